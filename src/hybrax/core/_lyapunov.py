"""Lyapunov exponents of any Stepper by tangent-linear propagation and QR (Benettin)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._contract import AbstractStepper
from ._progress import ProgressCallback
from ._state import get_time, is_inexact_array, with_time

__all__ = ["lyapunov_spectrum"]


def lyapunov_spectrum(
    stepper: AbstractStepper,
    state: PyTree,
    n_steps: int,
    k: int = 1,
    *,
    reorthonormalize_every: int = 1,
    discard_steps: int = 0,
    key: PRNGKeyArray | None = None,
    progress: bool = False,
) -> Float[Array, " k"]:
    """The ``k`` leading Lyapunov exponents of the map ``stepper.step`` near ``state``.

    ``k`` tangent vectors are pushed through the linearised step (`jax.linearize`, one
    Jacobian–vector product per vector and step, never a full Jacobian) and
    re-orthonormalised by QR every ``reorthonormalize_every`` steps; the exponents are the
    time averages of ``log |diag R|`` (Benettin et al. 1980; Shimada & Nagashima 1979).
    Works for any Stepper whose state leaves are floating arrays; the ``time`` leaf and
    non-floating leaves are not perturbed.

    Parameters
    ----------
    stepper
        Any `AbstractStepper`; exponents are per unit of model time (``stepper.dt``).
    state
        Starting state; it should already lie on the attractor (spin it up with
        `hybrax.rollout` first).
    n_steps
        Steps to average over (static; a multiple of ``reorthonormalize_every``).
    k
        Number of exponents (static, at most the state dimension).
    reorthonormalize_every
        Steps between QR factorisations (static). Raise it for cheap, small-exponent
        systems; keep ``exp(lambda_1 dt every)`` well below the float range.
    discard_steps
        Initial steps whose growth is not averaged, while the tangent vectors align
        (static, a multiple of ``reorthonormalize_every``).
    key
        PRNG key for the random initial tangent vectors (default ``PRNGKey(0)``).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Array of shape ``(k,)``, sorted from largest to smallest.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.Lorenz63()
    >>> stepper = hybrax.RK4(model, dt=0.01)
    >>> state, _ = hybrax.rollout(stepper, model.initial_state(), 1000, save_every=None)
    >>> exponents = hybrax.lyapunov_spectrum(stepper, state, 20_000, k=3)
    >>> exponents.shape
    (3,)
    """
    for name, value in (
        ("n_steps", n_steps),
        ("k", k),
        ("reorthonormalize_every", reorthonormalize_every),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_steps % reorthonormalize_every or discard_steps % reorthonormalize_every:
        raise ValueError(
            f"n_steps={n_steps} and discard_steps={discard_steps} must be multiples of "
            f"reorthonormalize_every={reorthonormalize_every}"
        )
    if not 0 <= discard_steps < n_steps:
        raise ValueError(f"discard_steps must be in [0, n_steps), got {discard_steps}")
    dynamic, _ = eqx.partition(state, is_inexact_array)
    size = ravel_pytree(dynamic)[0].size - (get_time(state) is not None)
    if k > size:
        raise ValueError(f"k={k} exceeds the state's dimension {size}")
    key = jax.random.PRNGKey(0) if key is None else key
    return _lyapunov(
        stepper, state, n_steps, k, reorthonormalize_every, discard_steps, key, progress
    )


@eqx.filter_jit
def _lyapunov(stepper, state, n_steps, k, every, discard_steps, key, progress):
    stepper = stepper.prepare()
    dynamic, static = eqx.partition(state, is_inexact_array)
    flat, unravel = ravel_pytree(dynamic)
    ones = jax.tree.map(jnp.ones_like, dynamic)
    mask = ravel_pytree(with_time(ones, 0))[0]

    def flat_step(x):
        new = stepper.step(eqx.combine(unravel(x), static))
        return ravel_pytree(eqx.partition(new, is_inexact_array)[0])[0]

    real_dtype = jnp.finfo(flat.dtype).dtype
    basis = jax.random.normal(key, (flat.size, k), real_dtype).astype(flat.dtype)
    basis, _ = jnp.linalg.qr(basis * mask[:, None])

    def propagate(carry, _):
        x, q = carry
        x_next, tangent = jax.linearize(flat_step, x)
        return (x_next, jax.vmap(tangent, in_axes=1, out_axes=1)(q)), None

    def block(carry, index):
        x, q, total = carry
        (x, q), _ = lax.scan(propagate, (x, q), length=every)
        q, r = jnp.linalg.qr(q)
        growth = jnp.log(jnp.abs(jnp.diagonal(r)))
        keep = index >= discard_steps // every
        total = total + jnp.where(keep, growth, jnp.zeros_like(growth))
        if bar is not None:
            bar.update(index)
        return (x, q, total), None

    bar = ProgressCallback(n_steps // every, "lyapunov") if progress else None

    zeros = jnp.zeros((k,), real_dtype)
    (_, _, total), _ = lax.scan(
        block, (flat, basis, zeros), jnp.arange(n_steps // every)
    )
    dt = jnp.asarray(stepper.dt).astype(real_dtype)
    exponents = total / ((n_steps - discard_steps) * dt)
    return jnp.sort(exponents)[::-1]

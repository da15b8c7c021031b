"""Lyapunov exponents of any Stepper by tangent-linear propagation and QR (Benettin)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._contract import AbstractStepper, check_stepper, guard_time_step
from ._errors import ConfigurationError, NonFiniteStateError
from ._parameters import concrete_or_none
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
    non-floating leaves are not perturbed. For a stepper with its own state (see
    `hybrax.AbstractStepper.init`, e.g. `hybrax.AdamsBashforth3`'s history) the map is the
    step on its carry, started from ``stepper.init(state)``; the initial tangent vectors
    perturb the model state only, and the extra (damped) directions of the carry do not
    change the leading exponents.

    Parameters
    ----------
    stepper
        Any `AbstractStepper`; exponents are per unit of model time (``stepper.dt``).
    state
        Starting model state or carry; it should already lie on the attractor (spin it up
        with `hybrax.rollout` first and pass the carry it returns).
    n_steps
        Steps to average over (static; a multiple of ``reorthonormalize_every``).
    k
        Number of exponents (static, at most the model state's dimension).
    reorthonormalize_every
        Steps between QR factorisations (static). Raise it for cheap, small-exponent
        systems; keep ``exp(lambda_1 dt every)`` well below the float range. If the
        tangent vectors overflow (or the state becomes non-finite) a
        `hybrax.NonFiniteStateError` names ``reorthonormalize_every`` and a smaller value
        (under an outer `jax.jit` the same message is raised when it runs).
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
    >>> exponents = hybrax.lyapunov_spectrum(stepper, state, 5_000, k=3)
    >>> exponents.shape
    (3,)
    """
    check_stepper(stepper, "lyapunov_spectrum")
    for name, value in (
        ("n_steps", n_steps),
        ("k", k),
        ("reorthonormalize_every", reorthonormalize_every),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
    if n_steps % reorthonormalize_every or discard_steps % reorthonormalize_every:
        raise ConfigurationError(
            f"n_steps={n_steps} and discard_steps={discard_steps} must be multiples of "
            f"reorthonormalize_every={reorthonormalize_every}"
        )
    if not 0 <= discard_steps < n_steps:
        raise ConfigurationError(f"discard_steps must be in [0, n_steps), got {discard_steps}")
    model_state = stepper.state_of(stepper.init(state))
    dynamic, _ = eqx.partition(model_state, is_inexact_array)
    size = _real_flatten(dynamic)[0].size - (get_time(model_state) is not None)
    if k > size:
        raise ConfigurationError(f"k={k} exceeds the state's dimension {size}")
    key = jax.random.PRNGKey(0) if key is None else key
    exponents, code = _lyapunov(
        _forward_mode(stepper), state, n_steps, k, reorthonormalize_every, discard_steps, key,
        progress,
    )  # fmt: skip
    messages = _messages(reorthonormalize_every, jnp.result_type(exponents))
    concrete = concrete_or_none(code)
    if concrete is None:  # under an outer jit / vmap / grad: raise when it runs
        return eqx.branched_error_if(exponents, code > 0, jnp.maximum(code - 1, 0), messages)
    if concrete > 0:
        raise NonFiniteStateError(messages[int(concrete) - 1])
    return exponents


def _messages(every: int, dtype) -> tuple[str, str]:
    log_max = float(np.log(np.finfo(dtype).max))
    smaller = max(1, every // 10)
    return (
        "hybrax.lyapunov_spectrum: the state became NaN or inf; the stepper is unstable at "
        "this dt (check it with hybrax.rollout(..., check_finite=True)) or the start state is "
        "not finite.",
        f"hybrax.lyapunov_spectrum: the tangent vectors overflowed ({np.dtype(dtype).name}) "
        f"between re-orthonormalisations: reorthonormalize_every={every} steps is too many. "
        f"Keep lambda_1 * dt * reorthonormalize_every well below {log_max:.0f} (the log of "
        f"the largest {np.dtype(dtype).name}); try reorthonormalize_every={smaller}.",
    )


def _has_custom_backward(node) -> bool:
    return isinstance(node, eqx.Module) and getattr(node, "hand_written_backward", None) is True


def _forward_mode(stepper: AbstractStepper) -> AbstractStepper:
    """``stepper`` with every module that differentiates itself by a hand-written backward
    pass (``hand_written_backward=True``, e.g. `hybrax.fluids.IncompressibleNavierStokes`:
    a custom VJP, which forward mode cannot pass) switched to plain autodiff; the same
    step."""

    def plain(node):
        if _has_custom_backward(node):
            return dataclasses.replace(node, hand_written_backward=False)
        return node

    return jax.tree.map(plain, stepper, is_leaf=_has_custom_backward)


@eqx.filter_jit
def _lyapunov(stepper, state, n_steps, k, every, discard_steps, key, progress):
    stepper = stepper.prepare()
    carry = guard_time_step(stepper, stepper.init(state))
    dynamic, other = eqx.partition(carry, is_inexact_array)
    flat, unravel = _real_flatten(dynamic)
    # The initial tangent vectors perturb the model state only: 1 on each of its real
    # coordinates (both parts of complex entries) except its time, 0 on the time leaf and on
    # the stepper's own state (e.g. a multistep history).
    ones = jax.tree.map(lambda x: jnp.full_like(x, 1 + 1j if jnp.iscomplexobj(x) else 1), dynamic)
    zeros_carry = jax.tree.map(jnp.zeros_like, dynamic)
    model_ones = with_time(stepper.state_of(eqx.combine(ones, other)), 0)
    mask_tree = eqx.partition(
        stepper.with_state(eqx.combine(zeros_carry, other), model_ones), is_inexact_array
    )[0]
    mask = _real_flatten(mask_tree)[0]

    def flat_step(x, rest):
        new = stepper.step(eqx.combine(unravel(x), rest))
        new_dynamic, new_rest = eqx.partition(new, is_inexact_array)
        return _real_flatten(new_dynamic)[0], new_rest

    real_dtype = flat.dtype
    basis = jax.random.normal(key, (flat.size, k), real_dtype)
    basis, _ = jnp.linalg.qr(basis * mask[:, None])

    def propagate(carry, _):
        x, rest, q = carry
        x_next, tangent, rest = jax.linearize(lambda y: flat_step(y, rest), x, has_aux=True)
        return (x_next, rest, jax.vmap(tangent, in_axes=1, out_axes=1)(q)), None

    def block(carry, index):
        x, rest, q, total, code = carry
        (x, rest, q), _ = lax.scan(propagate, (x, rest, q), length=every)
        # Result code: 1 if the state went non-finite, else 2 if the tangents overflowed.
        bad = jnp.where(
            ~jnp.all(jnp.isfinite(x)), 1, jnp.where(~jnp.all(jnp.isfinite(q)), 2, 0)
        ).astype(jnp.int32)
        code = jnp.where(code == 0, bad, code)
        q, r = jnp.linalg.qr(q)
        growth = jnp.log(jnp.abs(jnp.diagonal(r)))
        keep = index >= discard_steps // every
        total = total + jnp.where(keep, growth, jnp.zeros_like(growth))
        if bar is not None:
            bar.update(index)
        return (x, rest, q, total, code), None

    bar = ProgressCallback(n_steps // every, "lyapunov") if progress else None

    zeros = jnp.zeros((k,), real_dtype)
    code = jnp.zeros((), jnp.int32)
    (_, _, _, total, code), _ = lax.scan(
        block, (flat, other, basis, zeros, code), jnp.arange(n_steps // every)
    )
    dt = jnp.asarray(stepper.dt).astype(real_dtype)
    exponents = total / ((n_steps - discard_steps) * dt)
    code = jnp.where((code == 0) & ~jnp.all(jnp.isfinite(exponents)), 2, code)
    return jnp.sort(exponents)[::-1], code


def _real_flatten(tree: PyTree):
    """One real vector from the floating leaves of ``tree`` (complex leaves as real and
    imaginary parts), in the widest precision among them, and the inverse map.

    Tangent vectors live in this real space, so a complex field's perturbations are real
    2-vectors per entry and the QR step stays a real orthogonalisation.
    """
    leaves, treedef = jax.tree.flatten(tree)
    dtypes = [jnp.result_type(x) for x in leaves]
    real_dtypes = [jnp.finfo(d).dtype for d in dtypes]
    widest = max(real_dtypes, key=lambda d: jnp.finfo(d).bits) if leaves else jnp.float32
    parts = []
    for x, d in zip(leaves, dtypes, strict=True):
        x = jnp.asarray(x)
        if jnp.issubdtype(d, jnp.complexfloating):
            x = jnp.stack([x.real, x.imag], axis=-1)
        parts.append(x.astype(widest).ravel())
    flat = jnp.concatenate(parts) if parts else jnp.zeros((0,), widest)
    shapes = [jnp.shape(x) for x in leaves]

    def unflatten(vector):
        out, start = [], 0
        for shape, d in zip(shapes, dtypes, strict=True):
            complex_leaf = jnp.issubdtype(d, jnp.complexfloating)
            size = int(np.prod(shape)) * (2 if complex_leaf else 1)
            chunk = vector[start : start + size]
            start += size
            if complex_leaf:
                pair = chunk.reshape(*shape, 2).astype(jnp.finfo(d).dtype)
                out.append(jax.lax.complex(pair[..., 0], pair[..., 1]))
            else:
                out.append(chunk.reshape(shape).astype(d))
        return jax.tree.unflatten(treedef, out)

    return flat, unflatten

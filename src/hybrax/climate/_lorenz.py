"""Lorenz-63, Lorenz-96 and the two-scale Lorenz-96 system."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from hybrax.core import (
    AbstractSemilinearDynamics,
    ConfigurationError,
    ODEState,
    check_dtype,
    check_field,
    parameter,
    scalar_like,
)

__all__ = ["Lorenz63", "Lorenz96", "TwoScaleLorenz96", "TwoScaleState"]


def _check_key(key, owner: str) -> None:
    """``key`` must be ``None`` or a JAX PRNG key (not a dtype passed in its place)."""
    if key is None or isinstance(key, jax.Array):
        return
    raise ConfigurationError(
        f"{owner}: key must be None or a jax.random.key(...), got {key!r:.60}; pass the "
        "dtype by name, e.g. initial_state(dtype=jnp.float64)"
    )


def _check_count(value, name: str, minimum: int, model: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{model} needs {name} >= {minimum} (an int), got {value!r}")


class Lorenz63(AbstractSemilinearDynamics):
    """The Lorenz (1963) convection model.

    .. math::
        \\dot x = \\sigma (y - x), \\quad \\dot y = x (\\rho - z) - y, \\quad
        \\dot z = x y - \\beta z

    State: `ODEState` with ``u = (x, y, z)``. The linear part (``-sigma x, -y, -beta z``)
    is exposed for exponential integrators. The defaults (sigma 10, rho 28, beta 8/3) give
    the butterfly attractor with largest Lyapunov exponent about 0.905.

    Parameters
    ----------
    sigma, rho, beta
        Prandtl number, Rayleigh-number ratio and geometric factor (differentiable leaves).

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.Lorenz63()
    >>> final, _ = hybrax.rollout(hybrax.RK4(model, dt=0.01), model.initial_state(), 500)
    """

    sigma: Float[Array, ""] = parameter(
        "sigma", default=10.0, positive=True, scalar=True, example="sigma=10.0"
    )
    rho: Float[Array, ""] = parameter("rho", default=28.0, scalar=True, example="rho=28.0")
    beta: Float[Array, ""] = parameter(
        "beta", default=8 / 3, positive=True, scalar=True, example="beta=8/3"
    )

    def linear_operator(self) -> ODEState:
        return ODEState(jnp.stack([-self.sigma, -jnp.ones_like(self.rho), -self.beta]))

    def nonlinear(self, state: ODEState, t: ArrayLike) -> ODEState:
        x, y, z = state.u[0], state.u[1], state.u[2]
        sigma, rho = scalar_like(self.sigma, state.u), scalar_like(self.rho, state.u)
        return ODEState(jnp.stack([sigma * y, x * (rho - z), x * y]), state.time)

    def check_state(self, state: ODEState) -> None:
        _check_record(state, ODEState, "Lorenz63")
        check_field("state.u", state.u, (3,), model="Lorenz63")

    def initial_state(self, key: PRNGKeyArray | None = None, dtype=None) -> ODEState:
        """The classic start ``(1, 1, 1)`` at time 0 (``key=None``), or ``(1, 1, 1)`` plus
        N(0, 1) noise drawn with ``key`` (``dtype``: default float)."""
        _check_key(key, "Lorenz63.initial_state")
        u = jnp.ones(3, dtype=check_dtype(dtype, "Lorenz63.initial_state"))
        if key is None:
            return ODEState(u)
        return ODEState(u + jax.random.normal(key, u.shape, u.dtype))


class Lorenz96(AbstractSemilinearDynamics):
    """The one-scale Lorenz (1996) model on a ring of ``K`` sites.

    .. math::
        \\dot X_k = (X_{k+1} - X_{k-2}) X_{k-1} - X_k + F, \\qquad X_{k+K} = X_k

    State: `ODEState` with ``u`` of shape ``(K,)``. The damping ``-X_k`` is the linear
    part (for exponential integrators). For ``K = 40, F = 8`` the flow is
    chaotic with mean about 2.34, standard deviation about 3.64 and leading Lyapunov
    exponent about 1.69 per time unit (one unit is about five "atmospheric days").
    ``dt = 0.01``–``0.05`` with `RK4` is customary.

    Parameters
    ----------
    num_variables
        ``K``, the number of sites (static, at least 4).
    forcing
        ``F`` (differentiable leaf).

    Examples
    --------
    >>> import jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
    >>> states = jax.vmap(model.initial_state)(jax.random.split(jax.random.key(0), 16))
    >>> final, _ = jax.vmap(lambda s: hybrax.rollout(hybrax.RK4(model, 0.01), s, 100))(states)
    >>> final.u.shape
    (16, 40)
    """

    num_variables: int = eqx.field(default=40, static=True)
    forcing: Float[Array, ""] = parameter(
        "forcing", default=8.0, scalar=True, example="forcing=8.0"
    )

    def __check_init__(self):
        _check_count(self.num_variables, "num_variables", 4, "Lorenz96")

    def linear_operator(self) -> ODEState:
        return ODEState(-jnp.ones((self.num_variables,), self.forcing.dtype))

    def nonlinear(self, state: ODEState, t: ArrayLike) -> ODEState:
        return ODEState(_l96_advection(state.u) + scalar_like(self.forcing, state.u), state.time)

    def check_state(self, state: ODEState) -> None:
        _check_record(state, ODEState, "Lorenz96")
        check_field("state.u", state.u, (self.num_variables,), model="Lorenz96")

    def initial_state(self, key: PRNGKeyArray | None = None, dtype=None) -> ODEState:
        """``X_k = F`` plus a perturbation: 0.01 at site 0 (``key=None``) or N(0, 1) noise.

        Spin up for about 10 time units before collecting statistics.
        """
        _check_key(key, "Lorenz96.initial_state")
        dtype = check_dtype(dtype, "Lorenz96.initial_state") or self.forcing.dtype
        x = jnp.full((self.num_variables,), self.forcing, dtype=dtype)
        if key is None:
            return ODEState(x.at[0].add(0.01))
        return ODEState(x + jax.random.normal(key, x.shape, x.dtype))


def _l96_advection(x: Array) -> Array:
    """``(X_{k+1} - X_{k-2}) X_{k-1}`` on a ring along the last axis."""
    x_minus_2, x_minus_1, x_plus_1 = _ring_neighbours(x, (-2, -1, 1))
    return (x_plus_1 - x_minus_2) * x_minus_1


def _ring_neighbours(x: Array, offsets: tuple[int, ...]) -> tuple[Array, ...]:
    """``x[..., k + offset]`` (periodic along the last axis) for each offset.

    The ring is padded once by wrap-around and every shift is a slice of the padded array.
    The optimisation barrier keeps XLA from fusing the padding into each consumer: on CPU
    a concatenation fused into an elementwise loop is evaluated per element with branches,
    which is 3-4x slower than materialising it once (measured in benchmarks/lorenz96.py).
    """
    size = x.shape[-1]
    before, after = max(0, -min(offsets)), max(0, max(offsets))
    padded = jnp.concatenate([x[..., size - before :], x, x[..., :after]], axis=-1)
    padded = jax.lax.optimization_barrier(padded)
    return tuple(padded[..., before + o : before + o + size] for o in offsets)


class TwoScaleState(eqx.Module):
    """State of the two-scale Lorenz-96 model.

    Parameters
    ----------
    x
        Slow variables ``X_k``, shape ``(K,)``.
    y
        Fast variables ``Y_{j,k}``, shape ``(K, J)`` (row ``k`` holds the ``J`` fast
        variables coupled to ``X_k``; flattened row-major they form one ring).
    time
        Model time (scalar).
    """

    x: Float[Array, " K"]
    y: Float[Array, "K J"]
    time: Float[Array, ""]

    def __init__(self, x: ArrayLike, y: ArrayLike, time: ArrayLike | None = None):
        self.x = jnp.asarray(x)
        self.y = jnp.asarray(y)
        self.time = jnp.asarray(0 if time is None else time, dtype=self.x.dtype)


class TwoScaleLorenz96(AbstractSemilinearDynamics):
    """The two-scale Lorenz (1996) model, in the form of Wilks (2005) and Arnold et al. (2013).

    .. math::
        \\dot X_k &= X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F - \\frac{h c}{b} \\sum_j Y_{j,k} \\\\
        \\dot Y_{j,k} &= c b\\, Y_{j+1,k}(Y_{j-1,k} - Y_{j+2,k}) - c Y_{j,k}
            + \\frac{h c}{b} X_k

    The damping terms ``-X_k`` and ``-c Y_{j,k}`` form the linear part (for exponential
    integrators, which remove the fast damping's step-size limit). The ``K J`` fast
    variables form one ring (``Y_{J+1,k} = Y_{1,k+1}``). The defaults
    ``K=8, J=32, h=1, b=10, c=10, F=20`` are the standard parameterisation test bed: the
    fast variables evolve ten times faster, so ``dt = 0.001``–``0.005`` with `RK4`.

    Parameters
    ----------
    num_slow, num_fast_per_slow
        ``K`` and ``J`` (static).
    forcing, coupling, amplitude_ratio, time_scale_ratio
        ``F``, ``h``, ``b``, ``c`` (differentiable leaves).

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.TwoScaleLorenz96()
    >>> final, _ = hybrax.rollout(hybrax.RK4(model, 0.005), model.initial_state(), 200)
    >>> final.y.shape
    (8, 32)
    """

    num_slow: int = eqx.field(default=8, static=True)
    num_fast_per_slow: int = eqx.field(default=32, static=True)
    forcing: Float[Array, ""] = parameter(
        "forcing", default=20.0, scalar=True, example="forcing=20.0"
    )
    coupling: Float[Array, ""] = parameter(
        "coupling", default=1.0, scalar=True, example="coupling=1.0"
    )
    amplitude_ratio: Float[Array, ""] = parameter(
        "amplitude_ratio", default=10.0, positive=True, scalar=True, example="amplitude_ratio=10.0"
    )
    time_scale_ratio: Float[Array, ""] = parameter(
        "time_scale_ratio",
        default=10.0,
        positive=True,
        scalar=True,
        example="time_scale_ratio=10.0",
    )

    def __check_init__(self):
        _check_count(self.num_slow, "num_slow (K)", 4, "TwoScaleLorenz96")
        _check_count(self.num_fast_per_slow, "num_fast_per_slow (J)", 1, "TwoScaleLorenz96")

    def coupling_tendency(self, x: Array, y: Array) -> Array:
        """The fast variables' effect on ``X``: ``-(h c / b) sum_j Y_{j,k}``, shape ``(K,)``.

        This is the term a closure for the one-scale model has to learn.
        """
        h, b, c = (
            scalar_like(p, x) for p in (self.coupling, self.amplitude_ratio, self.time_scale_ratio)
        )
        return -(h * c / b) * jnp.sum(y, axis=-1)

    def linear_operator(self) -> TwoScaleState:
        k, j = self.num_slow, self.num_fast_per_slow
        ones = jnp.ones((k, j), self.time_scale_ratio.dtype)
        return TwoScaleState(-jnp.ones((k,), self.forcing.dtype), -self.time_scale_ratio * ones)

    def nonlinear(self, state: TwoScaleState, t: ArrayLike) -> TwoScaleState:
        x, y = state.x, state.y
        forcing, h, b, c = (
            scalar_like(p, x)
            for p in (self.forcing, self.coupling, self.amplitude_ratio, self.time_scale_ratio)
        )
        dx = _l96_advection(x) + forcing + self.coupling_tendency(x, y)
        ring = y.reshape(*y.shape[:-2], -1)
        y_minus_1, y_plus_1, y_plus_2 = _ring_neighbours(ring, (-1, 1, 2))
        fast = (y_minus_1 - y_plus_2) * y_plus_1
        dy = c * b * fast.reshape(y.shape) + (h * c / b) * x[..., None]
        return TwoScaleState(dx, dy, state.time)

    def check_state(self, state: TwoScaleState) -> None:
        _check_record(state, TwoScaleState, "TwoScaleLorenz96")
        k, j = self.num_slow, self.num_fast_per_slow
        check_field("state.x", state.x, (k,), model="TwoScaleLorenz96")
        check_field("state.y", state.y, (k, j), model="TwoScaleLorenz96")

    def initial_state(self, key: PRNGKeyArray | None = None, dtype=None) -> TwoScaleState:
        """A start off the attractor: ``X`` near ``F``, small ``Y`` (random with ``key``).

        Spin up for a few time units before collecting statistics.
        """
        _check_key(key, "TwoScaleLorenz96.initial_state")
        dtype = check_dtype(dtype, "TwoScaleLorenz96.initial_state") or self.forcing.dtype
        k, j = self.num_slow, self.num_fast_per_slow
        x = jnp.full((k,), self.forcing, dtype).at[0].add(0.01)
        y = jnp.zeros((k, j), dtype).at[0, 0].set(0.01)
        if key is not None:
            kx, ky = jax.random.split(key)
            x = x + jax.random.normal(kx, (k,), dtype)
            y = 0.1 * jax.random.normal(ky, (k, j), dtype)
        return TwoScaleState(x, y)


def _check_record(state, cls, model: str) -> None:
    if not isinstance(state, cls):
        raise ConfigurationError(
            f"{model} expects a {cls.__name__} state, got {type(state).__name__}; "
            f"build one with {model}(...).initial_state() or hybrax.{cls.__name__}(...)"
        )

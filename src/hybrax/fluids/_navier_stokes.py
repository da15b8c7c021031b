"""2D incompressible Navier–Stokes in vorticity form, pseudo-spectral."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, DTypeLike, Float, PRNGKeyArray

from hybrax.core import (
    AbstractSemilinearDynamics,
    ConfigurationError,
    check_dtype,
    check_parameter,
    concrete_or_none,
    mul,
    parameter,
)
from hybrax.grids import Grid, SpectralState

from ._common import (
    ADVECTIVE_LIMITS,
    advective_courant_number,
    as_grid,
    check_finite_field,
    check_spectral_state,
)
from ._dealiasing import (
    AbstractDealiasing,
    TwoThirdsRule,
    check_dealias,
    dealiasing_factor,
    nyquist_free,
)
from ._forcing import AbstractForcing, KolmogorovForcing
from ._initial_conditions import random_vorticity
from ._observables import velocity_from_vorticity
from ._vorticity import curl_hat

__all__ = ["NavierStokes2D"]

_TWO_THIRDS = TwoThirdsRule()  # the default dealiasing (a field-less, immutable module)


@functools.lru_cache(maxsize=32)
def _advection_coefficients(
    grid: Grid, dealias: AbstractDealiasing | None, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Constant per-mode factors of the advection term, with the FFT scalings folded in.

    ``velocity``: shape (2, ...), ``(k_y, -k_x) / |k|^2`` times the dealiasing factor
    (the 2/3 mask by default) times ``N``
    (so that an unnormalised inverse FFT of ``i velocity * w_hat`` gives ``u, v``).
    ``products``: shape (2, ...), ``(k_x^2 - k_y^2, k_x k_y)`` times the mask over ``N``
    (so that they turn unnormalised FFTs of ``u v`` and ``v^2 - u^2`` into the advection
    tendency's forward-normalised coefficients).
    """
    kx, ky = (np.broadcast_to(k, grid.spectral_shape) for k in grid.numpy_wavenumbers())
    inverse_k2 = grid.numpy_inverse_wavenumber_squared()
    mask = dealiasing_factor(dealias, grid)
    n = grid.num_points
    velocity = np.stack([ky * inverse_k2, -kx * inverse_k2]) * (mask * n)
    products = np.stack([kx**2 - ky**2, kx * ky]) * (mask / n)
    return velocity.astype(dtype), products.astype(dtype)


class NavierStokes2D(AbstractSemilinearDynamics):
    """Incompressible 2D Navier–Stokes equations in vorticity form on a periodic box.

    .. math::
        \\partial_t \\omega + (\\mathbf U + \\mathbf u) \\cdot \\nabla \\omega
            = \\nu \\nabla^2 \\omega - \\alpha \\omega + F(\\mathbf x, t),
        \\qquad \\mathbf u = (\\partial_y \\psi, -\\partial_x \\psi),
        \\qquad \\nabla^2 \\psi = -\\omega

    with vorticity ``omega = dv/dx - du/dy``, kinematic ``viscosity`` ``nu``, linear
    ``drag`` ``alpha`` (from a ``-alpha u`` friction on the velocity) and a vorticity
    ``forcing`` ``F`` (the curl of a body force; see `KolmogorovForcing`). Units are the
    domain's length and the model's time; ``nu`` is in length^2 / time, ``alpha`` in
    1 / time. ``U = (U, V)`` is an optional uniform background (mean) flow
    (``mean_flow``, length / time): the flow is ``U + u``, and a run with it is the run
    without it translated by ``U t`` (Galilean invariance; unforced).

    **State**: a `hybrax.grids.SpectralState` whose ``field_hat`` holds the vorticity's
    forward-normalised real-FFT coefficients, shape ``grid.spectral_shape`` (use
    `from_velocity` / `to_velocity`, or `state_from_vorticity` / `vorticity`, to
    convert). Arrays index ``[x, y]``.

    **Discretisation**: pseudo-spectral, as a semilinear system ``L omega + N(omega)``
    with ``L = -nu |k|^2 - alpha - i (U k_x + V k_y)`` (diagonal, complex when there is a
    mean flow; integrated exactly by `hybrax.ETDRK4` or implicitly by
    `hybrax.CrankNicolsonRK4`, so the mean flow adds no advective time-step limit of its
    own; the Nyquist modes, which a real field cannot translate, are not advected) and
    ``N`` the advection by ``u`` plus forcing. The
    advection is evaluated in Basdevant's form
    ``u . grad omega = d_x d_y (v^2 - u^2) + (d_x^2 - d_y^2)(u v)``, which needs only two
    inverse and two forward real FFTs (one batched pair each) instead of the usual four
    and one; with the 2/3-rule applied to the velocity and to the result it equals the
    usual form to round-off, and the truncated inviscid system conserves energy and
    enstrophy exactly. ``dealias`` chooses the rule (the factor multiplies the velocity
    and the product). The mean vorticity is zero and stays zero.

    Parameters
    ----------
    grid
        A 2D `hybrax.grids.Grid` (or an int ``N`` for an ``N x N`` grid on
        ``[0, 2 pi]^2``).
    viscosity
        Kinematic viscosity ``nu`` >= 0 (differentiable leaf), default ``1e-3``.
    drag
        Linear drag coefficient ``alpha`` >= 0 (differentiable leaf), default 0.
    forcing
        An `AbstractForcing` or ``None`` (unforced).
    mean_flow
        ``(U, V)``, a uniform background velocity (differentiable leaf, shape ``(2,)``),
        or ``None`` (default: none; the linear operator stays real).
    dealias
        An `AbstractDealiasing`: `TwoThirdsRule()` (default), `SmoothFilter()` (Hou & Li's
        36th-order filter), or ``None`` for no dealiasing (Nyquist modes still dropped).

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import NavierStokes2D, KolmogorovForcing
    >>> model = NavierStokes2D(64, viscosity=1e-3, drag=0.1, forcing=KolmogorovForcing())
    >>> state = model.initial_state()
    >>> dt = hybrax.max_time_step(model, state, 0.5)  # Courant number 0.5
    >>> final, _ = hybrax.rollout(hybrax.ETDRK4(model, dt), state, 50, save_every=None)
    >>> model.vorticity(final).shape
    (64, 64)
    """

    grid: Grid
    viscosity: Float[Array, ""] = parameter(
        "NavierStokes2D: viscosity", nonnegative=True, scalar=True, example="viscosity=1e-3"
    )
    drag: Float[Array, ""] = parameter(
        "NavierStokes2D: drag", nonnegative=True, scalar=True, example="drag=0.1"
    )
    forcing: AbstractForcing | None
    mean_flow: Float[Array, "2"] | None
    dealias: AbstractDealiasing | None

    def __init__(
        self,
        grid: Grid | int,
        viscosity: ArrayLike = 1e-3,
        drag: ArrayLike = 0.0,
        forcing: AbstractForcing | None = None,
        *,
        mean_flow: ArrayLike | tuple[ArrayLike, ...] | None = None,
        dealias: AbstractDealiasing | None = _TWO_THIRDS,
    ):
        self.grid = as_grid(grid, 2, "NavierStokes2D")
        self.viscosity = viscosity
        self.drag = drag
        if forcing is not None and not isinstance(forcing, AbstractForcing):
            raise ConfigurationError(
                f"NavierStokes2D: forcing must be an AbstractForcing (e.g. KolmogorovForcing()) "
                f"or None, got {type(forcing).__name__}"
            )
        self.forcing = forcing
        self.mean_flow = None if mean_flow is None else _check_mean_flow(mean_flow)
        self.dealias = check_dealias(dealias, "NavierStokes2D")

    # ------------------------------------------------------------ the equations
    def linear_operator(self) -> SpectralState:
        if self.mean_flow is None:
            dtype = jnp.result_type(self.viscosity, self.drag)
            k2 = self.grid.wavenumber_squared(dtype)
            damping = -self.viscosity.astype(dtype) * k2 - self.drag.astype(dtype)
            return SpectralState(damping, 0.0)
        dtype = jnp.result_type(self.viscosity, self.drag, self.mean_flow)
        k2 = self.grid.wavenumber_squared(dtype)
        damping = -self.viscosity.astype(dtype) * k2 - self.drag.astype(dtype)
        # -(U d/dx + V d/dy) = -i (U k_x + V k_y), without the Nyquist modes (as
        # Grid.derivative): their translate is not a real field.
        free = nyquist_free(self.grid)
        kx, ky = (
            jnp.asarray(np.broadcast_to(k, free.shape) * free, dtype)
            for k in self.grid.numpy_wavenumbers()
        )
        u, v = self.mean_flow.astype(dtype)
        return SpectralState(jax.lax.complex(damping, -(u * kx + v * ky)), 0.0)

    def nonlinear(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        return SpectralState(self._advection_and_forcing(state.field_hat, t), state.time)

    def _advection_and_forcing(self, w_hat: Array, t: ArrayLike) -> Array:
        real = w_hat.real.dtype
        velocity, products = _advection_coefficients(self.grid, self.dealias, np.dtype(real))
        # i (k_y, -k_x) / |k|^2 * w_hat, dealiased: the velocity (u, v), both in one batch.
        # Built as a stack of two products rather than one broadcast product: the
        # transpose of a broadcast is a reduction, which made the gradient 2x slower.
        re, im = w_hat.real, w_hat.imag
        uv_hat = jnp.stack([jax.lax.complex(-c * im, c * re) for c in velocity])
        u, v = self.grid.irfft(uv_hat)
        p_hat = self.grid.rfft(jnp.stack([u * v, v * v - u * u]))
        # -(u . grad w) = (k_x^2 - k_y^2) FFT(u v) + k_x k_y FFT(v^2 - u^2), dealiased
        c0, c1 = jnp.asarray(products[0]), jnp.asarray(products[1])
        tendency = mul(c0, p_hat[0]) + mul(c1, p_hat[1])
        if self.forcing is not None:
            tendency = tendency + self.forcing.vorticity_forcing_hat(self.grid, t, tendency.dtype)
        return tendency

    def check_state(self, state: SpectralState) -> None:
        check_spectral_state(state, self.grid, "NavierStokes2D")

    # -------------------------------------------------------------- conversions
    def state_from_vorticity(
        self,
        vorticity: Float[ArrayLike, "nx ny"] | Complex[ArrayLike, "nx ny_half"],
        time: ArrayLike = 0.0,
    ) -> SpectralState:
        """The state holding a vorticity field (1 / time) at ``time``.

        ``vorticity`` is either physical (real, shape ``grid.shape``) or spectral (complex
        forward-normalised real-FFT coefficients, shape ``grid.spectral_shape``, e.g.
        ``grid.to_spectral(w)`` or `vorticity_from_velocity` of a spectral velocity),
        told apart by dtype. Its mean is removed, as periodic incompressible flow has zero
        mean vorticity.

        Examples
        --------
        >>> from hybrax.fluids import NavierStokes2D
        >>> model = NavierStokes2D(16)
        >>> w = model.vorticity(model.initial_state())
        >>> a = model.state_from_vorticity(w)
        >>> b = model.state_from_vorticity(model.grid.to_spectral(w))
        >>> bool((a.field_hat == b.field_hat).all())
        True
        """
        vorticity = jnp.asarray(vorticity)
        dtype, shape = vorticity.dtype, vorticity.shape
        if jnp.issubdtype(dtype, jnp.complexfloating) and shape == self.grid.spectral_shape:
            w_hat = vorticity
        elif jnp.issubdtype(dtype, jnp.floating) and shape == self.grid.shape:
            w_hat = self.grid.to_spectral(vorticity)
        else:
            raise ConfigurationError(
                f"NavierStokes2D.state_from_vorticity: vorticity must be a real physical "
                f"field of the grid's shape {self.grid.shape} or complex spectral coefficients "
                f"of shape {self.grid.spectral_shape} (grid.to_spectral(field)), got "
                f"{dtype}{shape}" + ("; for an ensemble use jax.vmap" if len(shape) > 2 else "")
            )
        check_finite_field(vorticity, "vorticity", "NavierStokes2D.state_from_vorticity")
        return SpectralState(w_hat.at[0, 0].set(0), time)

    def from_velocity(
        self,
        velocity: Float[ArrayLike, "2 nx ny"] | Complex[ArrayLike, "2 nx ny_half"],
        time: ArrayLike = 0.0,
    ) -> SpectralState:
        """The state of the flow with velocity ``(u, v)`` (length / time) at ``time``.

        ``velocity`` is stacked as ``(2, *grid.shape)`` (real, on the grid points) or
        ``(2, *grid.spectral_shape)`` (complex coefficients). The state holds its
        vorticity (`vorticity_from_velocity`), so the divergent part and the Nyquist modes
        are projected out, and the mean velocity is the model's ``mean_flow`` (zero
        without one): ``to_velocity(from_velocity(u)) == u`` for a divergence-free,
        Nyquist-free ``u``. A ``velocity`` whose spatial mean differs from ``mean_flow``
        (by more than 1e-6 of its largest speed) raises `hybrax.ConfigurationError`
        rather than losing that mean: build the model with ``mean_flow=`` that mean, or
        subtract it. (The check needs concrete values; under ``jit`` it is skipped.)

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from hybrax.fluids import NavierStokes2D
        >>> model = NavierStokes2D(32)
        >>> x, y = model.grid.coordinates(jnp.float32)
        >>> u = jnp.stack([jnp.sin(y), jnp.sin(x)])  # a divergence-free shear pair
        >>> state = model.from_velocity(u)
        >>> bool(jnp.allclose(model.to_velocity(state), u, atol=1e-5))
        True
        """
        w_hat = curl_hat(self.grid, velocity, "NavierStokes2D.from_velocity")
        check_finite_field(velocity, "velocity", "NavierStokes2D.from_velocity")
        self._check_velocity_mean(velocity)
        return self.state_from_vorticity(w_hat, time)

    def _check_velocity_mean(self, velocity) -> None:
        """Raise if ``velocity``'s mean is not the model's ``mean_flow`` (when concrete)."""
        values = concrete_or_none(velocity)
        target = np.zeros(2) if self.mean_flow is None else concrete_or_none(self.mean_flow)
        if values is None or target is None:
            return
        if np.iscomplexobj(values):
            values = np.asarray(self.grid.to_physical(jnp.asarray(values)))
        mean = values.mean(axis=(-2, -1))  # (..., 2)
        scale = max(float(np.max(np.abs(values))), float(np.max(np.abs(target))), 1e-30)
        if np.max(np.abs(mean - target)) <= 1e-6 * scale:
            return
        shown = np.round(mean.reshape(-1, 2)[0], 6).tolist()
        raise ConfigurationError(
            f"NavierStokes2D.from_velocity: velocity has the spatial mean (U, V) = "
            f"{tuple(shown)}, but the model's mean_flow is {tuple(np.round(target, 6).tolist())}"
            f"; the state holds vorticity, which has no mean velocity, so that mean would be "
            f"lost. Build the model with NavierStokes2D(..., mean_flow={tuple(shown)}) or "
            f"subtract the mean: velocity - velocity.mean(axis=(-2, -1), keepdims=True)"
        )

    def to_velocity(self, state: SpectralState) -> Float[Array, "2 nx ny"]:
        """The physical velocity ``U + (u, v)`` (length / time) of ``state``, stacked,
        shape ``(2, *grid.shape)``: `velocity` under the name that pairs with
        `from_velocity`.

        Examples
        --------
        >>> from hybrax.fluids import NavierStokes2D
        >>> model = NavierStokes2D(16, mean_flow=(1.0, 0.0))
        >>> model.to_velocity(model.initial_state()).shape
        (2, 16, 16)
        """
        return self.velocity(state)

    def vorticity(self, state: SpectralState) -> Float[Array, "nx ny"]:
        """The physical vorticity field, shape ``grid.shape``."""
        return self.grid.to_physical(state.field_hat)

    def velocity(self, state: SpectralState) -> Float[Array, "2 nx ny"]:
        """The physical velocity ``U + (u, v)``, the mean flow included, stacked, shape
        ``(2, *grid.shape)``."""
        velocity = velocity_from_vorticity(self.grid, state.field_hat)
        if self.mean_flow is None:
            return velocity
        return velocity + self.mean_flow.astype(velocity.dtype)[:, None, None]

    def max_velocity(self, state: SpectralState) -> Float[Array, ""]:
        """The largest flow speed ``|U + u|`` on the grid (for CFL checks; the mean flow
        is included, which is conservative: in the linear operator it limits accuracy, not
        stability)."""
        u, v = self.velocity(state)
        return jnp.sqrt(jnp.max(u * u + v * v))

    def courant_number(self, state: SpectralState, dt: ArrayLike) -> Array:
        return advective_courant_number(self.grid, self.max_velocity(state), dt)

    courant_number.__doc__ = ADVECTIVE_LIMITS

    def initial_state(
        self,
        key: PRNGKeyArray | None = None,
        *,
        peak_wavenumber: float = 4.0,
        max_velocity: float = 7.0,
        dtype: DTypeLike = jnp.float32,
    ) -> SpectralState:
        """A random band-limited vorticity field (see `random_vorticity`) at time 0.

        The defaults (peak wavenumber 4, maximum speed 7) are the initial conditions of
        Kochkov et al. (2021); ``key`` defaults to ``jax.random.key(0)``.
        """
        dtype = check_dtype(dtype, "NavierStokes2D.initial_state", allowed=(np.float32, np.float64))
        key = jax.random.key(0) if key is None else key
        w = random_vorticity(
            self.grid,
            key,
            peak_wavenumber=peak_wavenumber,
            max_velocity=max_velocity,
            dtype=dtype,
        )
        return self.state_from_vorticity(w)

    # ------------------------------------------------------------------ presets
    @classmethod
    def kolmogorov(
        cls,
        num_points: int = 256,
        *,
        viscosity: ArrayLike = 1e-3,
        drag: ArrayLike = 0.1,
        forcing_amplitude: ArrayLike = 1.0,
        forcing_wavenumber: int = 4,
    ) -> NavierStokes2D:
        """The forced 2D turbulence of Kochkov et al. (2021) on ``[0, 2 pi]^2``.

        A `NavierStokes2D` with body force ``f = sin(4 y) e_x`` (vorticity forcing
        ``-4 cos(4 y)``, see `KolmogorovForcing`), linear drag ``0.1`` and viscosity
        ``1e-3``, i.e. Reynolds number ``Re = sqrt(amplitude) / nu = 1000`` in Chandler &
        Kerswell's (2013) definition. After a transient of about 10 time units the flow is
        statistically stationary turbulence with speeds up to about 7; take the time step
        from ``hybrax.max_time_step(model, state, 0.5)`` or
        ``hybrax.grids.cfl_time_step(grid, 7.0, 0.5)``.

        Parameters
        ----------
        num_points
            Points per axis (static, even). Kochkov et al. used 2048 for ground truth and
            64–256 for training.
        viscosity, drag, forcing_amplitude
            ``nu``, ``alpha`` and the body-force amplitude (differentiable leaves).
        forcing_wavenumber
            Forcing periods across the domain (static), default 4.

        Examples
        --------
        >>> import hybrax
        >>> from hybrax.fluids import NavierStokes2D
        >>> model = NavierStokes2D.kolmogorov(64)
        >>> dt = hybrax.grids.cfl_time_step(model.grid, 7.0)
        >>> stepper = hybrax.CrankNicolsonRK4(model, dt)
        >>> final, energy = hybrax.rollout(stepper, model.initial_state(), 100, save_every=10,
        ...     observe=lambda s: hybrax.fluids.kinetic_energy(model.grid, s.field_hat))
        >>> energy.shape
        (10,)
        """
        return cls(
            Grid((num_points, num_points), 2 * math.pi),
            viscosity=viscosity,
            drag=drag,
            forcing=KolmogorovForcing(forcing_amplitude, forcing_wavenumber),
        )

    @classmethod
    def decaying_turbulence(
        cls, num_points: int = 256, *, viscosity: ArrayLike = 1e-3
    ) -> NavierStokes2D:
        """Unforced, drag-free 2D turbulence on ``[0, 2 pi]^2`` (the decaying case of
        jax-cfd / Kochkov et al. 2021): a `NavierStokes2D` with ``forcing=None``,
        ``drag=0``.

        Start it from `NavierStokes2D.initial_state` (a random field peaked at wavenumber
        4): energy decays slowly while enstrophy cascades to small scales and decays fast,
        and vortices merge into ever larger ones.

        Parameters
        ----------
        num_points
            Points per axis (static, even).
        viscosity
            ``nu`` (differentiable leaf), default ``1e-3``.

        Examples
        --------
        >>> from hybrax.fluids import NavierStokes2D
        >>> model = NavierStokes2D.decaying_turbulence(32)
        >>> model.forcing is None, float(model.drag)
        (True, 0.0)
        """
        return cls(Grid((num_points, num_points), 2 * math.pi), viscosity=viscosity)


def _check_mean_flow(mean_flow) -> Array:
    """``(U, V)`` as a checked float array of shape ``(2,)``."""
    if isinstance(mean_flow, (tuple, list)):
        mean_flow = jnp.stack(
            [check_parameter(m, "NavierStokes2D: mean_flow", scalar=True) for m in mean_flow]
        )
    flow = check_parameter(mean_flow, "NavierStokes2D: mean_flow", example="mean_flow=(1.0, 0.0)")
    if flow.shape != (2,):
        raise ConfigurationError(
            f"NavierStokes2D: mean_flow must be (U, V), shape (2,), got shape {flow.shape}; "
            "pass e.g. mean_flow=(1.0, 0.0) (length / time)"
        )
    return flow

"""Learned interpolation (Kochkov et al. 2021): a network predicts, per face, the stencil
weights that reconstruct the advected velocity, as a correction to a polynomial stencil that
keeps the weights summing to one."""

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

from hybrax.core import ConfigurationError

from ._fv_advection import (
    AbstractInterpolation,
    CentralInterpolation,
    UpwindInterpolation,
    stencil_values,
)

__all__ = ["BoundInterpolation", "FusedLearnedInterpolation", "LearnedInterpolation"]

_BASES = ("central", "upwind")
_STENCILS = (2, 4)


class LearnedInterpolation(AbstractInterpolation):
    """Face values ``sum_j w_j q_j`` over a ``stencil_size``-point stencil along the axis,
    with weights ``w = w_poly + c``: ``w_poly`` a polynomial stencil (``base``) and ``c`` a
    learned correction that sums to zero, so the weights always sum to one and the scheme
    stays at least first-order accurate (a constant field is reproduced exactly, whatever
    the network). Kochkov et al. (2021), "Machine learning-accelerated computational fluid
    dynamics", PNAS 118, e2101784118.

    The correction is parametrised on the stencil's differences: the network returns
    ``d_0 .. d_{s-2}`` per face and the face value is the base scheme's plus
    ``sum_j d_j (q_{j+1} - q_j)``, i.e. ``c_j = d_{j-1} - d_j`` (telescoping to zero sum).
    The network sees, per face, the ``stencil_size`` values of the advected component and
    the advecting velocity (``in_channels = stencil_size + 1`` channels, the interpolation
    axis moved to the first spatial axis so one network serves both axes) and returns
    ``out_channels = stencil_size - 1`` channels of the same spatial shape. Any callable
    ``(in_channels, *faces) -> (out_channels, *faces)`` works, e.g. a
    `hybrax.nn.PeriodicCNN`; its array leaves are trainable through the solver.

    Parameters
    ----------
    network
        The network, ``(stencil_size + 1, *faces) -> (stencil_size - 1, *faces)``.
    stencil_size
        Points per stencil along the axis (static), 2 or 4 (the solver pads two ghost
        layers); default 4.
    base
        Polynomial stencil (static): ``"central"`` (second order, default) or ``"upwind"``
        (first order); with the correction at zero the scheme equals
        `CentralInterpolation` or `UpwindInterpolation` exactly.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import hybrax.nn
    >>> from hybrax.fluids import IncompressibleNavierStokes, LearnedInterpolation
    >>> net = hybrax.nn.PeriodicCNN(2, 5, 3, hidden_channels=8, num_layers=2,
    ...     key=jax.random.key(0))
    >>> scheme = LearnedInterpolation(net)
    >>> q = jnp.full((8, 6), 2.0, net.dtype)  # 4 points + 2 ghosts each side along axis 0
    >>> faces = scheme(q, jnp.ones((5, 6), net.dtype), 0)
    >>> faces.shape, bool(jnp.allclose(faces, 2.0))  # a constant field is kept exactly
    ((5, 6), True)
    >>> model = IncompressibleNavierStokes.lid_driven_cavity(8, scheme=scheme)
    >>> model.scheme is scheme
    True
    """

    network: Callable[[Array], Array]
    stencil_size: int = eqx.field(static=True, default=4)
    base: str = eqx.field(static=True, default="central")

    def __check_init__(self):
        _check_scheme(self, "(in_channels, *faces) -> (out_channels, *faces)")

    @property
    def in_channels(self) -> int:
        """Channels the network receives: the stencil values and the velocity."""
        return self.stencil_size + 1

    @property
    def out_channels(self) -> int:
        """Channels the network returns: the free parameters of a zero-sum correction."""
        return self.stencil_size - 1

    def _differences(self, q: Array, velocity: Array, axis: int) -> tuple[Array, Array]:
        """(stencil values, network output) stacked on a leading axis, face-shaped."""
        stencil = stencil_values(q, axis, self.stencil_size)
        if stencil.shape[1:] != jnp.shape(velocity):
            raise ConfigurationError(
                f"velocity must have the interfaces' shape {stencil.shape[1:]}, "
                f"got {jnp.shape(velocity)}"
            )
        features = jnp.concatenate([stencil, jnp.asarray(velocity, stencil.dtype)[None]])
        # the interpolation axis first among the spatial axes: one network for all axes
        moved = jnp.moveaxis(features, axis + 1, 1)
        output = self.network(moved)
        expected = (self.out_channels, *moved.shape[1:])
        if output.shape != expected:
            raise ConfigurationError(
                f"network must return shape {expected} (stencil_size - 1 channels, the "
                f"faces' shape), got {output.shape}"
            )
        return stencil, jnp.moveaxis(output, 1, axis + 1).astype(stencil.dtype)

    def weights(self, q: Array, velocity: Array, axis: int) -> Array:
        """The stencil weights, shape ``(stencil_size, *faces)``: they sum to one per face."""
        stencil, d = self._differences(q, velocity, axis)
        return _weights(stencil, velocity, d, self.base)

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        stencil, d = self._differences(q, velocity, axis)
        return _face_values(q, velocity, axis, stencil, d, self.base)


def _check_scheme(scheme, signature: str) -> None:
    """A learned scheme's network (callable as ``signature``), stencil size and base."""
    if not callable(scheme.network):
        raise ConfigurationError(
            f"network must be callable {signature}, got {type(scheme.network).__name__}"
        )
    if scheme.stencil_size not in _STENCILS:
        raise ConfigurationError(
            f"stencil_size must be one of {_STENCILS}, got {scheme.stencil_size!r}"
        )
    if scheme.base not in _BASES:
        raise ConfigurationError(f"base must be one of {_BASES}, got {scheme.base!r}")


def _weights(stencil: Array, velocity: Array, d: Array, base_name: str) -> Array:
    """Weights ``w_poly + c`` with ``c_j = d_{j-1} - d_j`` (zero sum), ``(size, *faces)``."""
    zero = jnp.zeros_like(d[:1])
    correction = jnp.concatenate([zero, d]) - jnp.concatenate([d, zero])
    s = stencil.shape[0]
    mid = s // 2 - 1
    if base_name == "central":
        base = jnp.zeros((s,), stencil.dtype).at[mid : mid + 2].set(0.5)
        base = jnp.broadcast_to(base.reshape((s,) + (1,) * d[0].ndim), stencil.shape)
    else:
        index = jnp.where(velocity > 0, mid, mid + 1)
        base = (jnp.arange(s).reshape((s,) + (1,) * d[0].ndim) == index).astype(stencil.dtype)
    return base + correction


def _face_values(
    q: Array, velocity: Array, axis: int, stencil: Array, d: Array, base_name: str
) -> Array:
    """The base scheme's face values plus ``sum_j d_j (q_{j+1} - q_j)`` over the stencil."""
    base = CentralInterpolation() if base_name == "central" else UpwindInterpolation()
    correction = jnp.sum(d * (stencil[1:] - stencil[:-1]), axis=0)
    return base(q, velocity, axis) + correction


class FusedLearnedInterpolation(AbstractInterpolation):
    """Learned interpolation with one network for all fluxes, on fully periodic domains
    (Kochkov et al. 2021, as their models evaluate it): from the face velocities of the
    whole state, one call of the network returns the stencil corrections of every advective
    flux (each velocity component along each axis), instead of one call per flux as in
    `LearnedInterpolation`. Each flux then reconstructs its face values as
    `LearnedInterpolation` does (a polynomial ``base`` stencil plus a zero-sum correction,
    so the weights sum to one and a constant field is kept exactly).

    The model binds the scheme (`AbstractInterpolation.bind`) once per tendency, i.e. once
    per Runge–Kutta stage; `ProjectedRK` with ``freeze_scheme=True`` binds it once per
    step. With ``d`` axes and stencil size ``s`` the network maps the ``d`` velocity
    components (the periodic faces without their duplicate, divided by
    ``velocity_scale``), shape ``(d, *cells)``, to ``d * d * (s - 1)`` channels of the
    same spatial shape: for component ``c`` along axis ``a`` the channels
    ``(c * d + a) * (s - 1) ...`` hold the differences ``d_j`` at the cells (flux along a
    component's own axis, on the cell centres) or at the edges (across it), index for index.

    Parameters
    ----------
    network
        ``(d, *cells) -> (d * d * (stencil_size - 1), *cells)``, e.g. a
        `hybrax.nn.PeriodicCNN`; its array leaves are trainable through the solver.
    stencil_size
        Points per stencil along the axis (static), 2 or 4; default 4.
    base
        Polynomial stencil (static), ``"central"`` (default) or ``"upwind"``.
    velocity_scale
        Velocity scale dividing the network's input (static, length/time); default 1.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import hybrax.nn
    >>> from hybrax.fluids import (FusedLearnedInterpolation, IncompressibleNavierStokes,
    ...     ProjectedRK)
    >>> net = hybrax.nn.PeriodicCNN(2, 2, 12, hidden_channels=8, num_layers=2,
    ...     key=jax.random.key(0))
    >>> scheme = FusedLearnedInterpolation(net, velocity_scale=1.0)
    >>> model = IncompressibleNavierStokes.taylor_green(8, ndim=2, scheme=scheme)
    >>> stepper = ProjectedRK(model, 0.05, freeze_scheme=True)  # one network call per step
    >>> state = stepper.step(model.taylor_green_state())
    >>> bool(jnp.all(jnp.isfinite(state.u)))
    True
    """

    network: Callable[[Array], Array]
    stencil_size: int = eqx.field(static=True, default=4)
    base: str = eqx.field(static=True, default="central")
    velocity_scale: float = eqx.field(static=True, default=1.0)

    periodic_only: ClassVar[bool] = True

    def __check_init__(self):
        _check_scheme(self, "(d, *cells) -> (d * d * (stencil_size - 1), *cells)")
        if not self.velocity_scale > 0:
            raise ConfigurationError(
                f"velocity_scale must be a positive number, got {self.velocity_scale!r}"
            )

    def out_channels(self, ndim: int) -> int:
        """Channels the network returns on a ``ndim``-dimensional grid."""
        return ndim * ndim * (self.stencil_size - 1)

    def bind(self, velocity: tuple[Array, ...]) -> "BoundInterpolation":
        ndim = len(velocity)
        # the periodic faces without the duplicate last one: (d, *cells)
        cells = [lax.slice_in_dim(q, 0, q.shape[c] - 1, axis=c) for c, q in enumerate(velocity)]
        shapes = {q.shape for q in cells}
        if len(shapes) != 1:
            raise ConfigurationError(
                f"velocity: the components' periodic faces must share one shape, got {shapes}"
            )
        features = jnp.stack(cells) / jnp.asarray(self.velocity_scale, cells[0].dtype)
        output = self.network(features)
        s = self.stencil_size - 1
        expected = (self.out_channels(ndim), *features.shape[1:])
        if jnp.shape(output) != expected:
            raise ConfigurationError(
                f"network must return shape {expected} (d * d * (stencil_size - 1) channels "
                f"on the cells), got {jnp.shape(output)}"
            )
        output = output.astype(features.dtype)
        coefficients = tuple(
            tuple(output[(c * ndim + a) * s : (c * ndim + a + 1) * s] for a in range(ndim))
            for c in range(ndim)
        )
        return BoundInterpolation(coefficients, self.stencil_size, self.base)

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        raise ConfigurationError(
            "FusedLearnedInterpolation needs the whole state: use it as the scheme of an "
            "IncompressibleNavierStokes (which binds it), or call .bind(velocity) first"
        )


class BoundInterpolation(AbstractInterpolation):
    """A `FusedLearnedInterpolation` evaluated at one state (`AbstractInterpolation.bind`):
    the stencil corrections of every flux, ``coefficients[component][axis]`` of shape
    ``(stencil_size - 1, *cells)``. Binding it again returns it unchanged, so a stepper
    that binds once per step holds it over its stages.

    Parameters
    ----------
    coefficients
        Per component and axis, the differences ``d_j`` on the periodic cells or edges.
    stencil_size
        Points per stencil (static).
    base
        Polynomial stencil (static).
    """

    coefficients: tuple[tuple[Array, ...], ...]
    stencil_size: int = eqx.field(static=True, default=4)
    base: str = eqx.field(static=True, default="central")

    periodic_only: ClassVar[bool] = True

    def bind(self, velocity: tuple[Array, ...]) -> "BoundInterpolation":
        del velocity
        return self

    def _on_interfaces(self, component: int, axis: int, shape: tuple[int, ...]) -> Array:
        """The coefficients on a flux's interfaces (shape ``shape``), taken periodically:
        along the component's own axis interface ``k`` is cell ``k - 1`` (the padded
        interfaces start one cell before the first face), across it edge ``k``."""
        d = self.coefficients[component][axis]
        for ax, length in enumerate(shape):
            n = d.shape[ax + 1]
            start = -1 if (ax == axis and axis == component) else 0
            index = (np.arange(length) + start) % n
            d = jnp.take(d, index, axis=ax + 1)
        return d

    def interpolate(self, q: Array, velocity: Array, axis: int, component: int) -> Array:
        stencil = stencil_values(q, axis, self.stencil_size)
        d = self._on_interfaces(component, axis, stencil.shape[1:]).astype(stencil.dtype)
        return _face_values(q, velocity, axis, stencil, d, self.base)

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        raise ConfigurationError(
            "a bound FusedLearnedInterpolation needs the velocity component: call "
            ".interpolate(q, velocity, axis, component)"
        )

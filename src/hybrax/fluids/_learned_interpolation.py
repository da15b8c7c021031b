"""Learned interpolation (Kochkov et al. 2021): a network predicts, per face, the stencil
weights that reconstruct the advected velocity, as a correction to a polynomial stencil that
keeps the weights summing to one."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from hybrax.core import ConfigurationError

from ._fv_advection import (
    AbstractInterpolation,
    CentralInterpolation,
    UpwindInterpolation,
    stencil_values,
)

__all__ = ["LearnedInterpolation"]

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
        if not callable(self.network):
            raise ConfigurationError(
                f"network must be callable (in_channels, *faces) -> (out_channels, *faces), "
                f"got {type(self.network).__name__}"
            )
        if self.stencil_size not in _STENCILS:
            raise ConfigurationError(
                f"stencil_size must be one of {_STENCILS}, got {self.stencil_size!r}"
            )
        if self.base not in _BASES:
            raise ConfigurationError(f"base must be one of {_BASES}, got {self.base!r}")

    @property
    def in_channels(self) -> int:
        """Channels the network receives: the stencil values and the velocity."""
        return self.stencil_size + 1

    @property
    def out_channels(self) -> int:
        """Channels the network returns: the free parameters of a zero-sum correction."""
        return self.stencil_size - 1

    def _base(self) -> AbstractInterpolation:
        return CentralInterpolation() if self.base == "central" else UpwindInterpolation()

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
        zero = jnp.zeros_like(d[:1])
        correction = jnp.concatenate([zero, d]) - jnp.concatenate([d, zero])
        s, mid = self.stencil_size, self.stencil_size // 2 - 1
        if self.base == "central":
            base = jnp.zeros((s,), stencil.dtype).at[mid : mid + 2].set(0.5)
            base = jnp.broadcast_to(base.reshape((s,) + (1,) * d[0].ndim), stencil.shape)
        else:
            index = jnp.where(velocity > 0, mid, mid + 1)
            base = (jnp.arange(s).reshape((s,) + (1,) * d[0].ndim) == index).astype(stencil.dtype)
        return base + correction

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        stencil, d = self._differences(q, velocity, axis)
        correction = jnp.sum(d * (stencil[1:] - stencil[:-1]), axis=0)
        return self._base()(q, velocity, axis) + correction

"""Face reconstruction for finite-volume advection: the `AbstractInterpolation` contract and
the built-in central, upwind and van Leer (TVD) schemes."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from hybrax.core import ConfigurationError

__all__ = [
    "SCHEMES",
    "AbstractInterpolation",
    "CentralInterpolation",
    "UpwindInterpolation",
    "VanLeerInterpolation",
    "as_interpolation",
    "interface_values",
]

SCHEMES = ("central", "upwind", "van_leer")


def _shift(q: Array, axis: int, start: int, stop: int) -> Array:
    return lax.slice_in_dim(q, start, q.shape[axis] + stop, axis=axis)


def _van_leer_slope(q: Array, axis: int) -> Array:
    """Limited slope at points 1..n-2 of ``q`` along ``axis`` (van Leer 1974 harmonic mean
    of the one-sided differences, zero at extrema)."""
    left = _shift(q, axis, 1, -1) - _shift(q, axis, 0, -2)
    right = _shift(q, axis, 2, 0) - _shift(q, axis, 1, -1)
    product = left * right
    positive = product > 0
    total = jnp.where(positive, left + right, 1.0)
    return jnp.where(positive, 2 * product / total, 0.0)


def stencil_values(q: Array, axis: int, size: int) -> Array:
    """The ``size`` (2 or 4) padded points around every interface, stacked on a new leading
    axis: interface ``k`` (between padded points ``k+1`` and ``k+2``) sees padded points
    ``k+2-size//2 .. k+1+size//2``."""
    half = size // 2
    return jnp.stack([_shift(q, axis, j, j - 3) for j in range(2 - half, 2 + half)])


class AbstractInterpolation(eqx.Module):
    """Reconstruction of a padded field on the interfaces along one axis: the face values of
    the advective flux of `hybrax.fluids.IncompressibleNavierStokes` (its ``scheme``).

    ``__call__(q, velocity, axis)``: ``q`` carries two ghost layers on each side of ``axis``
    (``n + 4`` points for ``n`` real ones); the result has the ``n + 1`` interfaces between
    padded points ``k+1`` and ``k+2`` for ``k = 0..n`` (same shape as ``velocity``, the
    advecting velocity on those interfaces, length/time). Subclasses may hold array leaves
    (trainable parameters): a model's ``scheme`` is a pytree node, so `jax.grad` reaches
    them.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.fluids import CentralInterpolation
    >>> q = jnp.arange(6.0)  # 2 real points + 2 ghosts each side
    >>> CentralInterpolation()(q, jnp.ones(3), 0).tolist()
    [1.5, 2.5, 3.5]
    """

    periodic_only: ClassVar[bool] = False
    """Whether the scheme needs every side of the domain periodic (checked by the model)."""

    @abc.abstractmethod
    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        """Face values of ``q`` on the interfaces along ``axis`` (shape of ``velocity``)."""

    def bind(self, velocity: tuple[Array, ...]) -> "AbstractInterpolation":
        """The scheme for one evaluation of the tendency at the face velocities
        ``velocity`` (one array per component). The default returns the scheme itself; a
        scheme that evaluates a network once for all fluxes (`FusedLearnedInterpolation`)
        returns a copy holding that evaluation, so the model calls its network once per
        tendency, or once per step when the stepper binds it at the step's start."""
        del velocity
        return self

    def interpolate(self, q: Array, velocity: Array, axis: int, component: int) -> Array:
        """Face values of velocity component ``component`` along ``axis``: the model's
        entry point. The default ignores ``component`` and calls the scheme."""
        del component
        return self(q, velocity, axis)


class CentralInterpolation(AbstractInterpolation):
    """The mean of the two neighbours: second order, non-dissipative (``scheme="central"``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.fluids import CentralInterpolation
    >>> CentralInterpolation()(jnp.arange(5.0), jnp.ones(2), 0).tolist()
    [1.5, 2.5]
    """

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        return 0.5 * (_shift(q, axis, 1, -2) + _shift(q, axis, 2, -1))


class UpwindInterpolation(AbstractInterpolation):
    """The upwind neighbour (picked by the sign of ``velocity``): first order, dissipative
    (``scheme="upwind"``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.fluids import UpwindInterpolation
    >>> UpwindInterpolation()(jnp.arange(5.0), jnp.array([1.0, -1.0]), 0).tolist()
    [1.0, 3.0]
    """

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        return jnp.where(velocity > 0, _shift(q, axis, 1, -2), _shift(q, axis, 2, -1))


class VanLeerInterpolation(AbstractInterpolation):
    """MUSCL reconstruction with the van Leer (1974) limiter: second order, TVD
    (``scheme="van_leer"``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.fluids import VanLeerInterpolation
    >>> VanLeerInterpolation()(jnp.arange(5.0), jnp.ones(2), 0).tolist()
    [1.5, 2.5]
    """

    def __call__(self, q: Array, velocity: Array, axis: int) -> Array:
        left = _shift(q, axis, 1, -2)  # padded points 1 .. n+1
        right = _shift(q, axis, 2, -1)  # padded points 2 .. n+2
        slope = _van_leer_slope(q, axis)  # at padded points 1 .. n+2
        left_state = left + 0.5 * _shift(slope, axis, 0, -1)
        right_state = right - 0.5 * _shift(slope, axis, 1, 0)
        return jnp.where(velocity > 0, left_state, right_state)


_BUILT_IN = {
    "central": CentralInterpolation,
    "upwind": UpwindInterpolation,
    "van_leer": VanLeerInterpolation,
}


def as_interpolation(scheme: "str | AbstractInterpolation") -> AbstractInterpolation:
    """``scheme`` as an `AbstractInterpolation`: a name in `SCHEMES` gives the built-in
    module, a module is returned as is; anything else raises `ConfigurationError`."""
    if isinstance(scheme, AbstractInterpolation):
        return scheme
    if isinstance(scheme, str) and scheme in _BUILT_IN:
        return _BUILT_IN[scheme]()
    raise ConfigurationError(
        f"scheme must be one of {SCHEMES} or a hybrax.fluids.AbstractInterpolation, got {scheme!r}"
    )


def interface_values(
    q: Array, velocity: Array, axis: int, scheme: "str | AbstractInterpolation"
) -> Array:
    """``q`` reconstructed on the interfaces between consecutive points along ``axis``.

    ``q`` carries two ghost layers on each side of ``axis`` (``n + 4`` points for ``n`` real
    ones); the result has the ``n + 1`` interfaces between points ``-1|0, 0|1, ..., n-1|n``
    of the real range extended by one ghost each side, i.e. between padded points ``k+1``
    and ``k+2`` for ``k = 0..n``. ``velocity`` is the advecting velocity on those
    interfaces (it picks the upwind side). ``scheme`` is a name in `SCHEMES` or an
    `AbstractInterpolation`.
    """
    return as_interpolation(scheme)(q, velocity, axis)

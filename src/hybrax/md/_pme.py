"""Smooth particle-mesh Ewald (Essmann et al. 1995): the reciprocal sum on an FFT mesh."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, parameter

from ._ewald import AbstractEwald, _ewald_split
from ._space import PeriodicBox
from ._triclinic import TriclinicBox

__all__ = ["ParticleMeshEwald"]

_ORDER = 4  # cubic cardinal B-splines (support 4 mesh points per axis)


def _smooth_size(n: int) -> int:
    """The smallest 2-3-5-smooth integer >= n (fast FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _mesh(value) -> tuple[int, int, int]:
    values = (value,) * 3 if np.ndim(value) == 0 else tuple(np.ravel(value))
    ok = len(values) == 3 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 2 * _ORDER
        for v in values
    )
    if not ok:
        raise ConfigurationError(
            f"mesh must be an int or three ints, each at least {2 * _ORDER} (mesh points per "
            f"axis), got {value!r}; pass e.g. mesh=32"
        )
    return tuple(int(v) for v in values)


def _spline_weights(w: Array) -> Array:
    """Cubic cardinal B-spline ``M_4(w + j)`` for ``j = 0..3`` and ``w`` in ``[0, 1)``,
    stacked on a new last axis."""
    w2, w3 = w * w, w * w * w
    return jnp.stack(
        [
            w3 / 6.0,
            (-3.0 * w3 + 3.0 * w2 + 3.0 * w + 1.0) / 6.0,
            (3.0 * w3 - 6.0 * w2 + 4.0) / 6.0,
            (1.0 - w) ** 3 / 6.0,
        ],
        axis=-1,
    )


def _euler_factor(size: int) -> np.ndarray:
    """``|b(m)|^2`` of the Euler exponential spline for each FFT frequency index ``m``."""
    m = np.arange(size)
    knots = np.array([1.0, 4.0, 1.0]) / 6.0  # M_4(1), M_4(2), M_4(3)
    phase = np.exp(2j * np.pi * np.outer(m, np.arange(3)) / size)
    return 1.0 / np.abs(phase @ knots) ** 2


class ParticleMeshEwald(AbstractEwald):
    """Coulomb energy by smooth particle-mesh Ewald (SPME, cubic B-splines).

    The real-space and self terms are those of `EwaldCoulomb` (dense minimum-image pairs
    within ``cutoff``). The reciprocal sum is evaluated on a regular ``mesh``: the charges
    are spread onto it with cubic cardinal B-splines (4 points per axis), Fourier
    transformed, and weighted by ``exp(-k^2 / 4 alpha^2) / k^2`` times the Euler
    exponential-spline factors ``B(m)``:

    .. math::
        U_{rec} = \\frac{2 \\pi k_e}{V} \\sum_{m \\ne 0} \\frac{e^{-k_m^2 / 4\\alpha^2}}{k_m^2}
        B(m) |\\hat Q(m)|^2, \\qquad k_m = 2 \\pi m / L

    In a `TriclinicBox` the mesh spans the cell in fractional coordinates
    (``r inv(cell)``) and ``k_m = 2 pi m inv(cell)^T`` (Essmann et al.'s general form).

    ``O(N + K log K)`` for the mesh part (``K`` mesh points), against ``O(N M)`` for the
    direct k-sum. Forces are ``-jax.grad`` of this smooth (C^2) energy; they differ from the
    exact Ewald forces by the interpolation error, which falls like ``h^4`` with the mesh
    spacing ``h``.

    Parameters
    ----------
    charges
        ``(N,)`` charges summing to zero; a differentiable leaf.
    box
        The `PeriodicBox` or `TriclinicBox` used to choose the parameters.
    accuracy
        Relative accuracy: of the underlying Ewald split (`ewald_parameters`) and of the
        mesh, whose default is chosen so that the relative RMS force error against exact
        Ewald is below ``accuracy`` (measured: at most ``~0.2 (K / k_max)^-3.5`` for cubic
        splines, ``K`` mesh points and ``k_max`` from `ewald_parameters`); default 1e-4.
        SPME pays off at 1e-3 to 1e-5; for tighter results use `EwaldCoulomb`.
    cutoff, alpha
        Real-space cut-off and splitting parameter (default from ``accuracy``).
    mesh
        Mesh points per axis (an int or three), at least 8; default from ``accuracy``
        (at least ``2 k_max``), rounded up to a 2-3-5-smooth size.
    coulomb_constant
        ``k_e`` (default 1, reduced units; `METAL_COULOMB_CONSTANT` for eV, Å, e).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> box = md.PeriodicBox(2.0)
    >>> base = jnp.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
    >>> positions = jnp.concatenate([base, jnp.mod(base + jnp.array([1.0, 0.0, 0.0]), 2.0)])
    >>> charges = jnp.array([1.0] * 4 + [-1.0] * 4)
    >>> pme = md.ParticleMeshEwald(charges, box)
    >>> madelung = -2.0 * float(pme.energy(positions, None, box)) / 8
    >>> abs(madelung - 1.747565) < 1e-3  # NaCl Madelung constant, to the mesh accuracy
    True
    """

    charges: Float[Array, " N"] = parameter("charges")
    coulomb_constant: Float[Array, ""] = parameter("coulomb_constant", positive=True)
    alpha: float = eqx.field(static=True)
    cutoff: float = eqx.field(static=True)
    mesh: tuple[int, int, int] = eqx.field(static=True)

    def __init__(
        self,
        charges: ArrayLike,
        box: PeriodicBox | TriclinicBox,
        *,
        accuracy: float = 1e-4,
        cutoff: float | None = None,
        alpha: float | None = None,
        mesh: int | tuple[int, int, int] | None = None,
        coulomb_constant: ArrayLike = 1.0,
    ):
        self.charges, self.alpha, self.cutoff, k_max, sphere = _ewald_split(
            charges, box, accuracy, cutoff, alpha, "ParticleMeshEwald"
        )
        self.coulomb_constant = coulomb_constant
        if mesh is None:  # measured: RMS force error <~ 0.2 (K / k_max)^-3.5 (cubic splines)
            # a tilted mesh interpolates less well: aim at half the accuracy there
            target = accuracy if sphere is None else 0.5 * accuracy
            factor = max(2.0, (0.2 / target) ** (1.0 / 3.5))
            mesh = tuple(_smooth_size(max(math.ceil(factor * k), 2 * _ORDER)) for k in k_max)
        self.mesh = _mesh(mesh)

    def reciprocal_energy(
        self, positions: Float[Array, "N 3"], box: PeriodicBox | TriclinicBox
    ) -> Array:
        """The mesh estimate of ``(2 pi / V) sum_k exp(-k^2 / 4 alpha^2) |S(k)|^2 / k^2``
        (times k_e)."""
        reciprocal = self._check(positions, box)
        dtype = positions.dtype
        q = self.charges.astype(dtype)
        mesh = jnp.asarray(self.mesh, jnp.int32)
        orthorhombic = isinstance(box, PeriodicBox)
        if orthorhombic:
            lengths = jnp.broadcast_to(box.lengths.astype(dtype), (3,))
            fractional = positions / lengths
        else:
            fractional = positions @ reciprocal
        scaled = fractional * mesh.astype(dtype)  # mesh coordinates u (mod K)
        base = jnp.floor(scaled)
        weights = _spline_weights(scaled - base)  # (N, 3, 4): M_4(w + j) at point base - j
        offsets = jnp.arange(_ORDER, dtype=jnp.int32)
        points = (base.astype(jnp.int32)[:, :, None] - offsets) % mesh[:, None]
        spread = (
            q[:, None, None, None]
            * weights[:, 0, :, None, None]
            * weights[:, 1, None, :, None]
            * weights[:, 2, None, None, :]
        )
        index = (
            points[:, 0, :, None, None] * (self.mesh[1] * self.mesh[2])
            + points[:, 1, None, :, None] * self.mesh[2]
            + points[:, 2, None, None, :]
        )
        grid = jnp.zeros(math.prod(self.mesh), dtype).at[index.ravel()].add(spread.ravel())
        power = jnp.abs(jnp.fft.fftn(grid.reshape(self.mesh))) ** 2
        frequencies = [np.fft.fftfreq(n, 1.0 / n) for n in self.mesh]
        if orthorhombic:
            k2 = sum(
                (2.0 * jnp.pi * jnp.asarray(f, dtype) / lengths[d]).reshape(
                    [-1 if a == d else 1 for a in range(3)]
                )
                ** 2
                for d, f in enumerate(frequencies)
            )
        else:  # k = 2 pi m inv(cell)^T: |k|^2 = (2 pi)^2 m G m, G = inv(cell)^T inv(cell)
            metric = (2.0 * jnp.pi) ** 2 * reciprocal.T @ reciprocal
            m = [
                jnp.asarray(f, dtype).reshape([-1 if a == d else 1 for a in range(3)])
                for d, f in enumerate(frequencies)
            ]
            k2 = sum(metric[i, j] * m[i] * m[j] for i in range(3) for j in range(3))
        euler = np.einsum("i,j,k->ijk", *(_euler_factor(n) for n in self.mesh)).astype(dtype)
        nonzero = np.ones(self.mesh, bool)
        nonzero[0, 0, 0] = False
        safe_k2 = jnp.where(nonzero, k2, 1.0)
        influence = jnp.where(
            nonzero, jnp.exp(-safe_k2 / (4.0 * self.alpha**2)) / safe_k2 * euler, 0.0
        )
        volume = 1.0 / jnp.abs(jnp.linalg.det(reciprocal))
        k_e = self.coulomb_constant.astype(dtype)
        return k_e * 2.0 * math.pi / volume * jnp.sum(influence * power.astype(dtype))

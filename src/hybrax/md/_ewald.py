"""Long-range electrostatics by Ewald summation in a periodic box (orthorhombic or triclinic)."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import erfc
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import (
    ConfigurationError,
    check_float,
    check_parameter,
    concrete_or_none,
    parameter,
)

from ._energy import AbstractEnergy
from ._space import PeriodicBox
from ._triclinic import TriclinicBox

__all__ = ["METAL_COULOMB_CONSTANT", "AbstractEwald", "EwaldCoulomb", "ewald_parameters"]

METAL_COULOMB_CONSTANT = 14.399645
"""``1 / (4 pi epsilon_0)`` in LAMMPS metal units, eV Å / e^2 (pass it as
``coulomb_constant`` with positions in Å and charges in e to get energies in eV)."""


def _box_cell(box, owner: str) -> np.ndarray:
    """The concrete cell matrix (lattice vectors as rows) of a periodic box."""
    if not isinstance(box, (PeriodicBox, TriclinicBox)):
        raise ConfigurationError(
            f"{owner}: box must be a hybrax.md.PeriodicBox or TriclinicBox (Ewald sums are "
            f"periodic), got {type(box).__name__}"
        )
    leaf = box.lengths if isinstance(box, PeriodicBox) else box.cell
    concrete = concrete_or_none(leaf)
    if concrete is None:
        raise ConfigurationError(
            f"{owner}: the box is traced; build the energy outside jit from a concrete box "
            "(it fixes the number of k-vectors)"
        )
    concrete = np.asarray(concrete, np.float64)
    return np.diag(np.broadcast_to(concrete, (3,))) if isinstance(box, PeriodicBox) else concrete


def _widths(cell: np.ndarray) -> np.ndarray:
    """Perpendicular widths of a cell (its side lengths when orthorhombic)."""
    return 1.0 / np.sqrt(np.sum(np.linalg.inv(cell) ** 2, axis=0))


def _box_widths(box, dtype) -> Array:
    """Perpendicular widths of a (possibly traced) periodic box."""
    if isinstance(box, PeriodicBox):
        return jnp.broadcast_to(box.lengths.astype(dtype), (3,))
    return box.perpendicular_widths.astype(dtype)


def _reciprocal(box, dtype) -> Array:
    """``inv(cell)`` of a periodic box: its columns are the reciprocal vectors (without the
    ``2 pi``); diagonal ``1 / lengths`` for a `PeriodicBox`."""
    if isinstance(box, PeriodicBox):
        return jnp.diag(1.0 / jnp.broadcast_to(box.lengths.astype(dtype), (3,)))
    return jnp.linalg.inv(box.cell.astype(dtype))


def _real_error(s: float, cutoff: float, volume: float, spacing: float) -> float:
    """Real-space energy error over ``sum q^2 / spacing``: the larger of Kolafa–Perram's
    RMS estimate and the ordered worst case (a full shell of like charges just beyond the
    cut-off, as in a crystal: ``4 pi (r_c / l) erfc(alpha r_c)``)."""
    rms = spacing * math.sqrt(cutoff / (2.0 * volume)) * math.exp(-s * s) / (s * s)
    return max(rms, 4.0 * math.pi * cutoff / spacing * math.erfc(s))


def _reciprocal_error(k: int, alpha: float, length: float, spacing: float) -> float:
    """Reciprocal-space energy error over ``sum q^2 / spacing``: the larger of
    Kolafa–Perram's RMS estimate and the ordered worst case (Bragg peaks on the first
    neglected shell: ``4 (l / L) exp(-(pi K / alpha L)^2)``)."""
    gaussian = math.exp(-((math.pi * k / (alpha * length)) ** 2))
    rms = spacing * alpha / math.pi**2 * k**-1.5 * gaussian
    return max(rms, 4.0 * spacing / length * gaussian)


def ewald_parameters(
    box: PeriodicBox | TriclinicBox,
    num_atoms: int,
    accuracy: float = 1e-8,
    cutoff: float | None = None,
) -> tuple[float, float, tuple[int, int, int]]:
    """Splitting parameter, real-space cut-off and k-space extent for a requested accuracy.

    Uses the Kolafa–Perram (1992) RMS error estimates of the energy, relative to the energy
    scale ``sum_i q_i^2 / l`` with ``l = (V / N)^(1/3)`` the mean interparticle spacing:

    .. math::
        \\delta_r = l \\sqrt{r_c / 2V}\\, e^{-\\alpha^2 r_c^2} / (\\alpha r_c)^2, \\qquad
        \\delta_k = l \\frac{\\alpha}{\\pi^2} K^{-3/2} e^{-(\\pi K / \\alpha L)^2}

    ``alpha`` is chosen so that ``delta_r = accuracy`` at ``cutoff`` (default: half the
    shortest box side, the largest a minimum-image sum allows), then the smallest ``K``
    along each axis with ``delta_k <= accuracy``. In a `TriclinicBox` the side lengths
    ``L`` are its perpendicular widths, and ``2 pi K / L`` is the wave number to keep along
    each reciprocal vector.

    Parameters
    ----------
    box
        The `PeriodicBox` or `TriclinicBox` (concrete).
    num_atoms
        Number of charges ``N``.
    accuracy
        Relative RMS energy error, in ``(0, 1)``; default ``1e-8``.
    cutoff
        Real-space cut-off (length units), at most half the shortest box side (smallest
        perpendicular width).

    Returns
    -------
    alpha, cutoff, k_max
        ``alpha`` (1 / length), ``cutoff`` (length) and the largest integer wave-vector
        index along each axis, ``k = 2 pi n / L`` with ``|n_d| <= k_max[d]``.

    Examples
    --------
    >>> import hybrax.md as md
    >>> alpha, cutoff, k_max = md.ewald_parameters(md.PeriodicBox(2.0), 8, accuracy=1e-8)
    >>> cutoff, k_max
    (1.0, (13, 13, 13))
    """
    accuracy = check_float(accuracy, "accuracy", positive=True, example="accuracy=1e-8")
    if not accuracy < 1.0:
        raise ConfigurationError(
            f"accuracy is a relative error and must lie in (0, 1), got {accuracy!r}; pass e.g. "
            "accuracy=1e-8"
        )
    cell = _box_cell(box, "ewald_parameters")
    lengths = _widths(cell)
    half = 0.5 * float(lengths.min())
    if cutoff is None:
        cutoff = half
    cutoff = check_float(cutoff, "cutoff", positive=True, example=f"cutoff={half:.4g}")
    _check_cutoff(cutoff, half)
    volume = float(abs(np.linalg.det(cell)))
    spacing = (volume / max(int(num_atoms), 1)) ** (1.0 / 3.0)
    low, high = 0.1, 30.0  # bisection on s = alpha * cutoff (delta_r decreases with s)
    for _ in range(200):
        middle = 0.5 * (low + high)
        if _real_error(middle, cutoff, volume, spacing) > accuracy:
            low = middle
        else:
            high = middle
    alpha = high / cutoff
    k_max = []
    for length in lengths:
        k = 1
        while _reciprocal_error(k, alpha, float(length), spacing) > accuracy:
            k += 1
        k_max.append(k)
    return alpha, cutoff, tuple(k_max)


def _check_cutoff(cutoff: float, half: float) -> None:
    if cutoff > half * (1.0 + 1e-12):
        raise ConfigurationError(
            f"cutoff={cutoff:.6g} exceeds half the shortest box side ({half:.6g}): the "
            "real-space sum uses minimum images only, so the box is too small for this "
            f"cut-off; use cutoff <= {half:.6g} (a larger box, or a supercell)"
        )


def _k_max(value) -> tuple[int, int, int]:
    values = (value,) * 3 if np.ndim(value) == 0 else tuple(np.ravel(value))
    ok = len(values) == 3 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values
    )
    if not ok:
        raise ConfigurationError(
            f"k_max must be a positive int or three positive ints (largest wave-vector index "
            f"per axis), got {value!r}; pass e.g. k_max=8"
        )
    return tuple(int(v) for v in values)


def _half_space_indices(
    k_max: tuple[int, int, int], sphere: tuple[float, ...] | None = None
) -> np.ndarray:
    """Integer wave-vector indices ``n`` inside the ellipsoid ``sum (n_d / K_d)^2 <= 1``
    (or, given ``sphere`` = the reciprocal metric ``G`` (9 numbers, ``(2 pi)^2 inv(cell)^T
    inv(cell)`` of a triclinic cell) and a wave number ``k_c``, the sphere
    ``n G n <= k_c^2`` within ``|n_d| <= K_d``), one of each ``+-n`` pair, zero left out,
    shape ``(M, 3)``."""
    axes = [np.arange(-k, k + 1) for k in k_max]
    n = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    if sphere is None:
        inside = np.sum((n / np.asarray(k_max, np.float64)) ** 2, axis=-1) <= 1.0 + 1e-12
    else:
        metric, k_cut = np.asarray(sphere[:9]).reshape(3, 3), sphere[9]
        inside = np.einsum("mi,ij,mj->m", n, metric, n) <= k_cut**2 * (1.0 + 1e-12)
    half = (n[:, 0] > 0) | ((n[:, 0] == 0) & (n[:, 1] > 0))
    half |= (n[:, 0] == 0) & (n[:, 1] == 0) & (n[:, 2] > 0)
    return n[inside & half]


def _blocks(count: int, width: int) -> Array:
    """Row indices ``(num_blocks, block)`` covering ``range(count)`` (padded past the end)
    with ``block * width`` about 2^18, so a block of pair or k terms stays small."""
    block = max(1, min(count, 2**18 // max(width, 1)))
    num_blocks = -(-count // block)
    return jnp.arange(num_blocks * block).reshape(num_blocks, block)


def _ewald_split(charges, box, accuracy, cutoff, alpha, owner: str):
    """Checked ``(charges, alpha, cutoff, k_max, sphere)`` for an Ewald-type energy: 1-D
    charges summing to zero, and the splitting from `ewald_parameters` (``alpha``
    overridable). ``sphere`` is None in an orthorhombic box (``k_max`` the ellipsoid's
    semi-axes); in a triclinic one it is the reciprocal metric and the wave number ``k_c``
    (the largest ``2 pi K / L`` of `ewald_parameters`) of a sphere of wave vectors, and
    ``k_max`` the index ranges that hold it (``|n_d| <= k_c |a_d| / 2 pi``)."""
    charges = check_parameter(charges, "charges")
    if charges.ndim != 1:
        raise ConfigurationError(
            f"{owner}: charges must be a 1-D array (one charge per atom), got shape {charges.shape}"
        )
    concrete = concrete_or_none(charges)
    if concrete is not None and concrete.size:
        total = float(np.sum(concrete, dtype=np.float64))
        scale = float(np.sum(np.abs(concrete), dtype=np.float64))
        tolerance = 10.0 * np.finfo(concrete.dtype).eps * max(scale, 1.0)
        if abs(total) > tolerance:
            raise ConfigurationError(
                f"{owner}: charges must sum to zero (a net-charged periodic system has "
                f"infinite Coulomb energy), got sum(charges) = {total:.6g}; add counter-ions "
                "or adjust the charges"
            )
    auto_alpha, cutoff, k_max = ewald_parameters(box, charges.shape[0], accuracy, cutoff)
    if alpha is not None:
        alpha = check_float(alpha, "alpha", positive=True, example="alpha=3.0")
    sphere = None
    cell = _box_cell(box, owner)
    if np.any(cell != np.diag(np.diagonal(cell))):  # triclinic: a sphere of wave vectors
        reciprocal = np.linalg.inv(cell)
        k_cut = max(2.0 * np.pi * k / w for k, w in zip(k_max, _widths(cell), strict=True))
        sides = np.linalg.norm(cell, axis=1)
        k_max = tuple(math.floor(k_cut * a / (2.0 * np.pi) + 1e-9) for a in sides)
        metric = (2.0 * np.pi) ** 2 * reciprocal.T @ reciprocal
        sphere = (*(float(g) for g in metric.ravel()), float(k_cut))
    return charges, auto_alpha if alpha is None else alpha, cutoff, k_max, sphere


class AbstractEwald(AbstractEnergy):
    """Ewald-split Coulomb energy ``U = U_real + U_reciprocal + U_self`` of point charges in
    a periodic box, a `PeriodicBox` or a `TriclinicBox` (tin-foil boundary conditions).

    Holds the real-space part (all minimum-image pairs within ``cutoff``, dense) and the
    self term; subclasses implement ``reciprocal_energy(positions, box)`` (a direct k-sum in
    `EwaldCoulomb`, a smooth particle mesh in `ParticleMeshEwald`).
    """

    charges: eqx.AbstractVar[Float[Array, " N"]]
    coulomb_constant: eqx.AbstractVar[Float[Array, ""]]
    alpha: eqx.AbstractVar[float]
    cutoff: eqx.AbstractVar[float]

    @abc.abstractmethod
    def reciprocal_energy(
        self, positions: Float[Array, "N 3"], box: PeriodicBox | TriclinicBox
    ) -> Array:
        """The smooth long-range part (times k_e)."""

    def _check(self, positions: Array, box) -> Array:
        """Check the box and the positions' shape; return ``inv(cell)``."""
        name = type(self).__name__
        if not isinstance(box, (PeriodicBox, TriclinicBox)):
            raise ConfigurationError(
                f"{name} needs a hybrax.md.PeriodicBox or TriclinicBox, got {type(box).__name__}"
            )
        if positions.ndim != 2 or positions.shape != (self.charges.shape[0], 3):
            raise ConfigurationError(
                f"{name}: positions must have shape ({self.charges.shape[0]}, 3) (one row "
                f"per charge), got {positions.shape}"
            )
        widths = concrete_or_none(_box_widths(box, positions.dtype))
        if widths is not None:
            _check_cutoff(self.cutoff, 0.5 * float(np.min(widths)))
        return _reciprocal(box, positions.dtype)

    def real_space_energy(
        self, positions: Float[Array, "N 3"], box: PeriodicBox | TriclinicBox
    ) -> Array:
        """Screened short-range part ``sum_{i<j} q_i q_j erfc(alpha r) / r`` (times k_e)."""
        self._check(positions, box)
        dtype = positions.dtype
        q = self.charges.astype(dtype)
        n = positions.shape[0]
        columns = jnp.arange(n)

        @jax.checkpoint  # blocks of rows: O(block * N) memory, also in reverse mode
        def rows(index):
            valid = index < n
            xi = positions[jnp.minimum(index, n - 1)]
            d = box.displacement(xi[:, None, :], positions[None, :, :])
            off_diagonal = valid[:, None] & (index[:, None] != columns[None, :])
            r2 = jnp.where(off_diagonal, jnp.sum(d * d, axis=-1), 1.0)
            r = jnp.sqrt(r2)
            keep = off_diagonal & (r2 < self.cutoff**2)
            qi = q[jnp.minimum(index, n - 1)]
            pair = jnp.where(keep, qi[:, None] * q[None, :] * erfc(self.alpha * r) / r, 0.0)
            return jnp.sum(pair)

        total = jnp.sum(lax.map(rows, _blocks(n, n)))
        return 0.5 * self.coulomb_constant.astype(dtype) * total

    def self_energy(self, dtype=None) -> Array:
        """``-k_e alpha / sqrt(pi) sum_i q_i^2``, the removed self-interaction."""
        q = self.charges if dtype is None else self.charges.astype(dtype)
        k_e = self.coulomb_constant.astype(q.dtype)
        return -k_e * self.alpha / math.sqrt(math.pi) * jnp.sum(q * q)

    def energy(self, positions, neighbors, box):
        """Total Ewald energy, one compiled call; ``neighbors`` is ignored (dense sums)."""
        self._check(positions, box)  # here, where the box may still be concrete
        total = _total_energy(self, positions, box)
        if concrete_or_none(self.charges) is None:  # traced: neutrality checked as it runs
            q = self.charges
            scale = jnp.maximum(jnp.sum(jnp.abs(q)), 1.0)
            bad = jnp.abs(jnp.sum(q)) > 10.0 * jnp.finfo(q.dtype).eps * scale
            total = eqx.error_if(
                total,
                bad,
                f"{type(self).__name__}: charges must sum to zero (a net-charged periodic "
                "system has infinite Coulomb energy; these charges were traced by jax.jit/"
                "grad/vmap, so this is checked when the computation runs); add counter-ions "
                "or adjust the charges",
            )
        return total


@eqx.filter_jit
def _total_energy(ewald: AbstractEwald, positions: Array, box) -> Array:
    return (
        ewald.real_space_energy(positions, box)
        + ewald.reciprocal_energy(positions, box)
        + ewald.self_energy(positions.dtype)
    )


class EwaldCoulomb(AbstractEwald):
    """Coulomb energy of point charges in a periodic box (orthorhombic `PeriodicBox` or
    triclinic `TriclinicBox`) by Ewald summation.

    .. math::
        U = k_e \\Big[\\sum_{i<j,\\, r_{ij} < r_c} q_i q_j \\frac{\\mathrm{erfc}(\\alpha
        r_{ij})}{r_{ij}} + \\frac{2\\pi}{V} \\sum_{0 < |k| \\le k_c}
        \\frac{e^{-k^2/4\\alpha^2}}{k^2} |S(k)|^2 - \\frac{\\alpha}{\\sqrt\\pi} \\sum_i q_i^2
        \\Big], \\quad S(k) = \\sum_j q_j e^{i k \\cdot r_j}

    (tin-foil boundary conditions: no surface term). The real-space sum runs over all
    minimum-image pairs (dense: ``O(N^2)`` time, computed in blocks of rows so memory stays
    ``O(N)``; no neighbour list; meant for up to a few thousand charges, about 0.7 s for
    energy and forces of 1000 charges at ``accuracy=1e-6`` on one CPU core), so ``cutoff``
    may not exceed half the shortest box side.
    The reciprocal sum runs over wave vectors ``k = 2 pi n / L`` with integer ``n`` in the
    ellipsoid ``sum_d (n_d / k_max_d)^2 <= 1`` (half of them, by ``S(-k) = S(k)^*``),
    ``O(N M)`` time for ``M`` wave vectors. In a `TriclinicBox` the wave vectors are
    ``k = 2 pi n inv(cell)^T`` (integer combinations of the reciprocal vectors) in the
    sphere ``|k| <= k_c`` of the box given here, ``k_c`` the largest ``2 pi K / w`` of
    `ewald_parameters` over the perpendicular widths ``w``. Forces are ``-jax.grad`` of the
    energy; the virial (`hybrax.md.pressure`) and the stress tensor (`hybrax.md.stress`)
    come from the box gradient, since the wave vectors follow the cell.

    ``alpha``, ``cutoff`` and ``k_max`` are chosen from ``accuracy`` for the ``box`` given
    here by `ewald_parameters` (Kolafa–Perram estimates); each may be overridden. They are
    static; the energy is then evaluated in whatever box of the same kind it is called
    with (the cut-off is re-checked against it when it is concrete).

    Units: energies are ``coulomb_constant * charge^2 / length``. The default
    ``coulomb_constant = 1`` is reduced (Gaussian) units; with positions in Å and charges
    in e, ``coulomb_constant = hybrax.md.METAL_COULOMB_CONSTANT`` (14.399645 eV Å / e^2)
    gives eV (LAMMPS metal units).

    Parameters
    ----------
    charges
        ``(N,)`` charges; a differentiable leaf. They must sum to zero (else a
        `hybrax.ConfigurationError` naming ``charges`` and the sum); traced charges are not
        checked.
    box
        The `PeriodicBox` or `TriclinicBox` used to choose the parameters.
    accuracy
        Relative RMS energy error for the automatic parameters, in ``(0, 1)``; default 1e-8.
    cutoff
        Real-space cut-off (length); default half the shortest box side.
    alpha
        Splitting parameter (1 / length); default from ``accuracy``.
    k_max
        Largest wave-vector index, an int or one per axis; default from ``accuracy``
        (orthorhombic boxes only: in a triclinic one the sphere follows ``accuracy``).
    coulomb_constant
        ``k_e = 1 / (4 pi epsilon_0)`` in the chosen units; a differentiable leaf, default 1.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> a = 2.0  # rock salt, nearest-neighbour distance 1
    >>> base = jnp.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
    >>> positions = jnp.concatenate([base, jnp.mod(base + jnp.array([1.0, 0.0, 0.0]), a)])
    >>> charges = jnp.array([1.0] * 4 + [-1.0] * 4)
    >>> box = md.PeriodicBox(a)
    >>> coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-8)
    >>> madelung = -2.0 * coulomb.energy(positions, None, box) / 8
    >>> round(float(madelung), 5)  # float32; 1.747564595 in float64
    1.74756
    """

    charges: Float[Array, " N"] = parameter("charges")
    coulomb_constant: Float[Array, ""] = parameter(
        "coulomb_constant", positive=True, example="coulomb_constant=14.399645 (eV Å / e^2)"
    )
    alpha: float = eqx.field(static=True)
    cutoff: float = eqx.field(static=True)
    k_max: tuple[int, int, int] = eqx.field(static=True)
    sphere: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        charges: ArrayLike,
        box: PeriodicBox | TriclinicBox,
        *,
        accuracy: float = 1e-8,
        cutoff: float | None = None,
        alpha: float | None = None,
        k_max: int | tuple[int, int, int] | None = None,
        coulomb_constant: ArrayLike = 1.0,
    ):
        self.charges, self.alpha, self.cutoff, auto_k, self.sphere = _ewald_split(
            charges, box, accuracy, cutoff, alpha, "EwaldCoulomb"
        )
        self.coulomb_constant = coulomb_constant
        if k_max is not None and self.sphere is not None:
            raise ConfigurationError(
                "EwaldCoulomb: k_max applies to orthorhombic boxes; in a TriclinicBox the "
                "wave vectors fill a sphere chosen from accuracy (pass accuracy=..., not "
                f"k_max={k_max!r})"
            )
        self.k_max = auto_k if k_max is None else _k_max(k_max)

    def reciprocal_energy(
        self, positions: Float[Array, "N 3"], box: PeriodicBox | TriclinicBox
    ) -> Array:
        """Smooth long-range part ``(2 pi / V) sum_k exp(-k^2 / 4 alpha^2) |S(k)|^2 / k^2``
        (times k_e)."""
        reciprocal = self._check(positions, box)
        dtype = positions.dtype
        q = self.charges.astype(dtype)
        indices = _half_space_indices(self.k_max, self.sphere)
        table = jnp.asarray(indices, dtype)
        volume = 1.0 / jnp.abs(jnp.linalg.det(reciprocal))

        @jax.checkpoint  # blocks of wave vectors: O(block * N) memory
        def shells(index):
            n = table[jnp.minimum(index, table.shape[0] - 1)]
            k = 2.0 * jnp.pi * n @ reciprocal.T
            k2 = jnp.sum(k * k, axis=-1)
            phase = k @ positions.T
            structure2 = (jnp.cos(phase) @ q) ** 2 + (jnp.sin(phase) @ q) ** 2
            weight = jnp.exp(-k2 / (4.0 * self.alpha**2)) / k2
            return jnp.sum(jnp.where(index < table.shape[0], weight * structure2, 0.0))

        total = jnp.sum(lax.map(shells, _blocks(indices.shape[0], positions.shape[0])))
        return self.coulomb_constant.astype(dtype) * 4.0 * jnp.pi / volume * total

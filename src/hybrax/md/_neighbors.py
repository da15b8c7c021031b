"""Verlet neighbour lists: the abstract base, pair-sum reductions and shared helpers.

Two lists fill the `AbstractNeighborList` contract: `CellNeighborList` (sorted cell
windows, O(N), `_cell_list.py`) and `DenseNeighborList` (all pairs, O(N^2), small systems
and free space, `_dense_list.py`); `hybrax.md.neighbor_list` builds the right one.

Every list is a superset of the pairs within ``cutoff`` as long as no atom moved more than
``skin / 2`` since its build; pair sums mask by the cut-off, so energies equal the
all-pairs energies. A list that needed more room than its static capacities allow, or
whose static cell grid no longer covers the box, sets ``overflow``: every pair sum computed
with it is then NaN (never silently wrong), the integrators raise a
`hybrax.NeighborListError` and `hybrax.md.simulate` rebuilds the list (`grow`).
"""

import abc
import enum
from collections.abc import Callable
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, NeighborListError, check_float, concrete_or_none

from ._space import AbstractBox, PeriodicBox
from ._triclinic import TriclinicBox, check_cutoff_fits

__all__ = ["AbstractNeighborList"]

T = TypeVar("T")
R = TypeVar("R")

_BLOCK_ELEMENTS = 65536  # pair slots per block of the force pass (keeps temporaries in cache)
# the cell windows' pass also scatters reactions into the whole sorted copy of the system:
# smaller blocks keep more of it in cache (in.lj 32,000 atoms: 43 -> 40 ms; 4,000: same)
_WINDOW_BLOCK_ELEMENTS = 16384


class Sums(enum.Enum):
    """What a pair pass returns (see `AbstractNeighborList.pair_sums`)."""

    PER_ATOM = "per-atom scalar sums and per-atom vector sums"
    TOTALS_AND_VECTORS = "scalar totals over pairs and per-atom vector sums"
    TOTALS = "scalar totals over pairs only"


class AbstractNeighborList(eqx.Module):
    """A Verlet neighbour list: for every atom, the atoms within ``cutoff + skin``.

    Create one with `hybrax.md.neighbor_list` (outside jit: it sizes the static
    capacities from the configuration), or choose the kind with
    `hybrax.md.CellNeighborList.build` / `hybrax.md.DenseNeighborList.build`. Inside jit,
    `update` rebuilds it for new positions with the same capacities, `needs_update` tells
    whether any atom moved more than ``skin / 2`` since the last build, and `maybe_update`
    rebuilds only then (a `jax.lax.cond`, so rebuilds happen inside a scan with no host
    round trip).

    Attributes
    ----------
    cutoff, skin
        Interaction cut-off and Verlet skin (sigma); the list radius is their sum. Static.
    overflow
        True once a rebuild needed more room than the static capacities allow, or was asked
        for a box that the static cell grid no longer covers (see `covers`); also for a
        periodic box shorter than twice the cutoff. Sticky. The list is then incomplete,
        and every pair sum computed with it is NaN (never silently wrong); rebuild with
        `grow` (done for you by `hybrax.md.simulate`; the integrators raise a
        `hybrax.NeighborListError` by default).
    num_builds
        How many times the list was built (diagnostic).
    """

    reference_positions: AbstractVar[Float[Array, "N 3"]]
    overflow: AbstractVar[Bool[Array, ""]]
    num_builds: AbstractVar[Int[Array, ""]]
    cutoff: AbstractVar[float]
    skin: AbstractVar[float]
    block_size: AbstractVar[int]

    # ------------------------------------------------------------------ structure
    @property
    def num_atoms(self) -> int:
        return self.reference_positions.shape[-2]

    @property
    def list_radius(self) -> float:
        return self.cutoff + self.skin

    @property
    @abc.abstractmethod
    def slots_per_atom(self) -> int:
        """Candidate slots per atom in the force pass."""

    # ------------------------------------------------------------------ building
    @abc.abstractmethod
    def covers(self, box: AbstractBox) -> Bool[Array, ""]:
        """Whether this list still reaches ``cutoff + skin`` in ``box`` (jit- and
        vmap-compatible). `update` flags a box it does not cover as an overflow."""

    @abc.abstractmethod
    def update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> "AbstractNeighborList":
        """Rebuild for ``positions`` with the same capacities (jit-compatible); sets
        ``overflow`` if they are too small or the list does not `cover` ``box``."""

    @abc.abstractmethod
    def maybe_update(
        self, positions: Float[Array, "N 3"], box: AbstractBox
    ) -> "AbstractNeighborList":
        """`update` if `needs_update`, else ``self``."""

    @abc.abstractmethod
    def grow(
        self, positions: Float[Array, "N 3"], box: AbstractBox, factor: float = 1.15
    ) -> "AbstractNeighborList":
        """A new list for ``positions`` in ``box`` with room for everything any earlier
        build needed times ``factor`` (host side, not jit-compatible)."""

    @abc.abstractmethod
    def with_needs_of(self, lists: "AbstractNeighborList") -> "AbstractNeighborList":
        """This list, remembering the largest needs seen by ``lists`` (the same list
        rebuilt for a batch of configurations, stacked along a leading axis), so that
        `grow` makes room for all of them."""

    @abc.abstractmethod
    def _pass(self, positions, box, pair_fn, cutoff, species, sums: Sums):
        """The pair pass of this kind of list (arguments already checked)."""

    def max_displacement(self, positions: Float[Array, "N 3"], box: AbstractBox) -> Array:
        """Largest distance any atom moved since the last build (sigma)."""
        d = box.displacement(positions, self.reference_positions.astype(positions.dtype))
        return jnp.sqrt(jnp.max(jnp.sum(d * d, axis=-1)))

    def needs_update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> Array:
        """True when some atom moved more than ``skin / 2`` since the last build."""
        d = box.displacement(positions, self.reference_positions.astype(positions.dtype))
        return jnp.max(jnp.sum(d * d, axis=-1)) > (0.5 * self.skin) ** 2

    # ------------------------------------------------------------------ pair sums
    def pair_sums(
        self,
        positions: Float[Array, "N 3"],
        box: AbstractBox,
        pair_fn: Callable,
        *,
        cutoff: float | None = None,
        species: Int[Array, " N"] | None = None,
        per_atom_scalars: bool = True,
    ) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        """Per-atom sums over all neighbours ``j`` within ``cutoff``.

        ``pair_fn(r2, species_i, species_j)`` gets squared distances ``r2`` (pairs beyond
        the cut-off get ``r2 = cutoff**2`` so it stays finite; their values are discarded)
        and the species of both atoms (``None`` without species), and returns two tuples:
        ``scalars`` (symmetric in ``i, j``) and ``weights``. The result is
        ``(sum_j s_ij for s in scalars)`` as ``(N,)`` arrays and
        ``(sum_j w_ij (r_i - r_j) for w in weights)`` as ``(N, 3)`` arrays (minimum image).
        With ``weights = (-2 dphi/dr2,)`` the vector sum is the pair force.

        With ``per_atom_scalars=False`` the scalars come back as totals over pairs
        (``sum_{i<j}``, each pair once) instead of per-atom sums, which saves work when only
        the total energy is wanted.

        Differentiable with respect to positions, box and whatever ``pair_fn`` closes over.
        """
        sums = Sums.PER_ATOM if per_atom_scalars else Sums.TOTALS_AND_VECTORS
        return self._checked_pass(positions, box, pair_fn, cutoff, species, sums)

    def pair_total(
        self,
        positions: Float[Array, "N 3"],
        box: AbstractBox,
        pair_fn: Callable,
        *,
        cutoff: float | None = None,
        species: Int[Array, " N"] | None = None,
    ) -> tuple[Array, ...]:
        """``sum over pairs i < j`` of each scalar of ``pair_fn`` (see `pair_sums`)."""
        return self._checked_pass(positions, box, pair_fn, cutoff, species, Sums.TOTALS)

    def _checked_pass(self, positions, box, pair_fn, cutoff, species, sums: Sums):
        n = self.num_atoms
        _check_positions_shape(positions, n)
        cutoff = self.cutoff if cutoff is None else float(cutoff)
        if cutoff > self.cutoff + 1e-12:
            raise ConfigurationError(
                f"a pair term with cutoff {cutoff} needs a neighbour list built for at "
                f"least that cutoff; this list has cutoff {self.cutoff}. Build it with "
                f"neighbor_list(positions, box, cutoff={cutoff}, ...)"
            )
        if species is not None and jnp.shape(species) != (n,):
            raise ConfigurationError(
                f"species must have shape ({n},) (one integer per atom), got {jnp.shape(species)}"
            )
        # a NaN or inf position fails every distance test, so its atom would silently drop
        # out of the sums: an error when the positions are known now, NaN results when traced
        known = concrete_or_none(positions)
        if known is not None and not np.all(np.isfinite(known)):
            bad = int(np.argmax(~np.all(np.isfinite(known), axis=-1)))
            raise ConfigurationError(
                f"positions contain NaN or inf (first: atom {bad}, at {known[bad].tolist()}); "
                "the pair sums would leave that atom out"
            )
        out = self._pass(positions, box, pair_fn, cutoff, species, sums)
        # an overflowed list (or one whose grid no longer covers the box) misses pairs:
        # make every result NaN rather than silently wrong
        broken = self.overflow
        if known is None:
            broken = broken | ~_all_finite(positions)
        return jax.tree.map(lambda x: jnp.where(broken, jnp.nan, x), out)


def retry_with_grown_list(
    attempt: Callable[[T], tuple[R, bool]],
    regrow: Callable[[T, R], T],
    start: T,
    *,
    max_regrowths: int,
    message: str,
) -> tuple[T, R]:
    """The one regrow loop of hybrax.md: ``result, overflowed = attempt(start)``; while it
    overflowed, ``start = regrow(start, result)`` (a grown list) and try again. Returns the
    last ``(start, result)``; raises `hybrax.NeighborListError` with ``message`` when the
    list still overflows after ``max_regrowths`` growths (used by `hybrax.md.simulate` for
    a chunk of steps and by `hybrax.md.label_frames` for a batch of frames)."""
    current = start
    for _attempt in range(max_regrowths + 1):
        result, overflowed = attempt(current)
        if not overflowed:
            return current, result
        current = regrow(current, result)
    raise NeighborListError(message)


def _all_finite(x: Array) -> Bool[Array, ""]:
    """``jnp.all(jnp.isfinite(x))`` as one floating-point sum (``x * 0`` is NaN exactly
    where ``x`` is NaN or inf): XLA on a CPU compiles it to one library reduction instead
    of a tree of four kernels."""
    return jnp.isfinite(jnp.sum(x * 0))


def _blocks(n: int, block: int):
    block = min(block, n)
    num_blocks = -(-n // block)
    return block, num_blocks, num_blocks * block - n


def _pad(x, pad: int, fill=0):
    if pad == 0:
        return x
    return jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)


def _window_gather(source: Array, starts: Array, width: int) -> Array:
    """``source[starts[b] : starts[b] + width]`` for every ``b``: shape ``(B, width, ...)``
    (trailing axes of ``source`` are carried whole)."""
    return jax.vmap(lambda s: lax.dynamic_slice_in_dim(source, s, width, axis=0))(starts)


def _window_scatter_add(target: Array, starts: Array, values: Array) -> Array:
    """``target[starts[b] : starts[b] + W] += values[b]`` along the first axis of
    ``target`` (the transpose of the window gather); trailing axes are carried whole."""
    trailing = tuple(range(2, values.ndim))
    dnums = lax.ScatterDimensionNumbers(
        update_window_dims=(1, *trailing),
        inserted_window_dims=(),
        scatter_dims_to_operand_dims=(0,),
    )
    return lax.scatter_add(target, starts[:, None], values, dnums)


def _split(values, name: str):
    if not (isinstance(values, tuple) and len(values) == 2):
        raise TypeError(f"{name} must return (scalars, weights), two tuples of arrays")
    scalars, weights = values
    return tuple(scalars), tuple(weights)


def _check_positions_shape(positions, n: int | None = None) -> None:
    shape = jnp.shape(positions)
    if len(shape) != 2 or shape[1] != 3:
        hint = "; for a batch of systems use jax.vmap" if len(shape) == 3 else ""
        raise ConfigurationError(f"positions must have shape (N, 3), got {shape}{hint}")
    if n is not None and shape[0] != n:
        raise ConfigurationError(
            f"positions have {shape[0]} atoms but the neighbour list was built for {n}; "
            "build a new list with hybrax.md.neighbor_list"
        )
    if not jnp.issubdtype(jnp.result_type(positions), jnp.floating):
        raise ConfigurationError(
            f"positions must be floating point (float32 or float64), got "
            f"{jnp.result_type(positions)}"
        )


def _block_size(slots: int, n: int, elements: int = _BLOCK_ELEMENTS) -> int:
    block = max(8, elements // max(slots, 1))
    block = 1 << (block.bit_length() - 1)  # power of two
    return max(1, min(block, n))


def _static_length(value, name: str, *, positive: bool, example: str) -> float:
    """A static (Python float) number such as the cutoff or skin: `hybrax.core.check_float`
    with ``positive``, else non-negative."""
    return check_float(value, name, positive=positive, nonnegative=not positive, example=example)


def _multiplier(value, name: str) -> float:
    """A head-room factor: a finite number >= 1."""
    checked = _static_length(value, name, positive=True, example=f"{name}=1.25")
    if not checked >= 1.0:
        raise ConfigurationError(
            f"{name} must be at least 1 (it is the head room over the current configuration's "
            f"needs; below 1 the list would overflow at once), got {checked!r}; pass e.g. "
            f"{name}=1.25"
        )
    return checked


def _minimum_capacity(value, num_columns: int) -> tuple[int, tuple[int, ...]]:
    try:
        column, widths = value
        column, widths = int(column), tuple(int(w) for w in widths)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            "minimum_capacity must be (column_capacity, window_widths): an int and a tuple "
            f"of ints, got {value!r}"
        ) from error
    if len(widths) != num_columns or column < 0 or min(widths) < 0:
        raise ConfigurationError(
            f"minimum_capacity window widths must be {num_columns} non-negative ints (one per "
            f"column of this grid), got {value!r}"
        )
    return column, widths


def _check_inside(positions, lengths) -> None:
    p, lengths = concrete_or_none(positions), concrete_or_none(lengths)
    if p is None or lengths is None:  # traced (inside jit): the list wraps positions itself
        return
    if not np.all(np.isfinite(p)):
        bad = int(np.argmax(~np.all(np.isfinite(p), axis=-1)))
        raise ConfigurationError(f"positions contain NaN or inf (first: atom {bad})")
    outside = np.any((p < 0) | (p >= lengths), axis=1)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise ConfigurationError(
            f"{int(outside.sum())} positions lie outside the periodic box [0, L) with "
            f"L = {lengths.tolist()} (first: atom {i} at {p[i].tolist()}); wrap them with "
            "box.wrap(positions)"
        )


def _checked_build_inputs(positions, box, cutoff, skin):
    """The checked inputs of a list build (host side): ``(positions, cutoff, skin,
    lengths)``, with ``lengths`` the box sides as float64 NumPy (None in free space and
    in a `TriclinicBox`, whose width along each direction is checked here too)."""
    _check_positions_shape(positions)
    positions = jnp.asarray(positions)
    if positions.shape[0] < 1:
        raise ConfigurationError("neighbor_list: positions hold no atoms (shape (0, 3))")
    if not isinstance(box, AbstractBox):
        raise ConfigurationError(
            "neighbor_list: box must be a hybrax.md.PeriodicBox, TriclinicBox or FreeSpace, "
            f"got {box!r}"
        )
    cutoff = _static_length(cutoff, "cutoff", positive=True, example="cutoff=2.5")
    skin = _static_length(skin, "skin", positive=False, example="skin=0.3")
    if isinstance(box, TriclinicBox):
        cell = _concrete_box(box.cell)
        widths = 1.0 / np.sqrt(np.sum(np.linalg.inv(cell) ** 2, axis=0))
        check_cutoff_fits(widths, cutoff, "neighbor_list", TRICLINIC_DIRECTIONS)
        _check_inside_cell(positions, cell)
        return positions, cutoff, skin, None
    if not isinstance(box, PeriodicBox):
        return positions, cutoff, skin, None
    lengths = _concrete_box(box.lengths)
    if np.any(lengths < 2 * cutoff):
        k = int(np.argmax(lengths < 2 * cutoff))
        raise ConfigurationError(
            f"box sides {lengths} are shorter than twice the cutoff {cutoff}: the box is too "
            f"small for the cutoff in direction {'xyz'[k]} (L{'xyz'[k]} = {lengths[k]:g}); the "
            "minimum-image convention would miss periodic images. Use a larger box "
            "(more cells) or a shorter cutoff"
        )
    _check_inside(positions, lengths)
    return positions, cutoff, skin, lengths


TRICLINIC_DIRECTIONS = (
    "a (across the faces spanned by b and c)",
    "b (across the faces spanned by c and a)",
    "c (across the faces spanned by a and b)",
)


def _concrete_box(leaf) -> np.ndarray:
    value = concrete_or_none(leaf)
    if value is None:
        raise ConfigurationError(
            "neighbor_list sizes its static capacities from the box, so it must be called "
            "outside jax.jit with a concrete box; inside jit use the list's update method"
        )
    return np.asarray(value, dtype=np.float64)


def _check_inside_cell(positions, cell: np.ndarray) -> None:
    """`_check_inside` for a triclinic cell: fractional coordinates in ``[0, 1)``."""
    p = concrete_or_none(positions)
    if p is None:
        return
    tolerance = 16 * float(np.finfo(np.asarray(p).dtype).eps)  # round-off of box.wrap
    p = np.asarray(p, np.float64)
    if not np.all(np.isfinite(p)):
        bad = int(np.argmax(~np.all(np.isfinite(p), axis=-1)))
        raise ConfigurationError(f"positions contain NaN or inf (first: atom {bad})")
    s = p @ np.linalg.inv(cell)
    outside = np.any((s < -tolerance) | (s >= 1.0 + tolerance), axis=1)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise ConfigurationError(
            f"{int(outside.sum())} positions lie outside the periodic TriclinicBox (first: atom "
            f"{i} at {p[i].tolist()}, fractional {s[i].tolist()}); wrap them with "
            "box.wrap(positions)"
        )

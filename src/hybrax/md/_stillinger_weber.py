"""The Stillinger-Weber potential, parameters as in LAMMPS ``pair_style sw`` files."""

from __future__ import annotations

import os
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, check_parameter, concrete_or_none

from ._manybody import (
    AbstractManyBodyEnergy,
    check_max_neighbors,
    check_species,
    element_names,
    row_block_pass,
    triplet_cosines,
)
from ._potential_files import SW_FIELDS, read_stillinger_weber
from ._units import unit_label

__all__ = ["StillingerWeber"]


def triplet_tables(name: str, values: dict, positive: Sequence[str] = ()) -> dict[str, Array]:
    """Check ``(S, S, S)`` parameter tables (all the same shape, finite, ``positive`` ones
    > 0); a scalar is a one-species table."""
    out = {}
    for key, value in values.items():
        table = check_parameter(value, f"{name} {key}", positive=key in positive)
        if table.ndim == 0:
            table = table.reshape(1, 1, 1)
        if table.ndim != 3 or len(set(table.shape)) != 1:
            raise ConfigurationError(
                f"{name}: {key} must be a scalar or an (S, S, S) table over element triplets "
                f"(i, j, k), got shape {table.shape}"
            )
        out[key] = table
    shapes = {t.shape for t in out.values()}
    if len(shapes) > 1:
        raise ConfigurationError(f"{name}: parameter tables disagree in shape: {sorted(shapes)}")
    return out


def set_triplet_fields(module, values: dict, positive, species, max_neighbors, elements) -> None:
    """Fill a three-body potential's parameter tables, species, capacity and element names
    (shared by `StillingerWeber` and `Tersoff`; the cut-off is set by each)."""
    name = type(module).__name__
    for key, table in triplet_tables(name, values, positive).items():
        setattr(module, key, table)
    count = getattr(module, next(iter(values))).shape[0]
    module.species = check_species(name, species, count)
    module.max_neighbors = check_max_neighbors(max_neighbors, name)
    module.elements = element_names(elements, count)


def parameter(table: Array, index: tuple, dtype) -> Array:
    """``table[index]`` in ``dtype``; a one-species table is its scalar (no gather: the
    test is on the static shape, so compile time still does not grow with species)."""
    table = table.astype(dtype)
    return table.reshape(()) if table.size == 1 else table[index]


def pair_and_triplet_species(table: Array, species: Array, atoms: Array | None = None):
    """Species of each atom's neighbours ``(N, M)`` and the index tuples of the ``(i, j, j)``
    and ``(i, j, k)`` entries of a parameter table; ``atoms`` names the rows of ``table``
    (default all atoms in order)."""
    s_j = species[table]
    own = species if atoms is None else species[atoms]
    s_i = jnp.broadcast_to(own[:, None], s_j.shape)
    pair = (s_i, s_j, s_j)
    triplet = (own[:, None, None], s_j[:, :, None], s_j[:, None, :])
    return pair, triplet


class StillingerWeber(AbstractManyBodyEnergy):
    """Stillinger-Weber potential (Stillinger & Weber 1985), as LAMMPS ``pair_style sw``.

    .. math::
        E = \\sum_{i<j} \\phi_2(r_{ij}) + \\sum_i \\sum_{j<k} \\phi_3(r_{ij}, r_{ik},
        \\theta_{jik}), \\quad
        \\phi_2 = A \\epsilon [B (\\sigma / r)^p - (\\sigma / r)^q]
        e^{\\sigma / (r - a \\sigma)}, \\quad
        \\phi_3 = \\lambda \\epsilon (\\cos\\theta_{jik} - \\cos\\theta_0)^2
        e^{\\gamma \\sigma / (r_{ij} - a \\sigma)} e^{\\gamma \\sigma / (r_{ik} - a \\sigma)}

    Every parameter is an ``(S, S, S)`` table over element triplets ``(i, j, k)`` (a
    differentiable leaf); two-body terms and the radial factors of ``(i, j)`` use entry
    ``(i, j, j)`` as in LAMMPS. Species index the tables, so cost and compile time do not
    depend on the number of species. Units: LAMMPS ``metal`` (eV, Angstrom).

    Forces and virial have their derivatives written out (one pass over each atom's
    neighbour pairs). With one species (one ``lambda epsilon`` and ``cos_theta0``) the
    three-body sums come from each atom's moments of its neighbour directions, so the
    cost grows linearly with ``max_neighbors``, not quadratically. The per-atom neighbour
    tables are read fastest from a full Verlet table
    (``hybrax.md.neighbor_list(..., format="table")``: each row filtered to the cut-off in
    place); other lists' pairs are sorted by atom first.

    Parameters
    ----------
    epsilon, sigma, a, lambda_, gamma, cos_theta0, A, B, p, q
        The LAMMPS ``sw`` parameters (``lambda`` is spelled ``lambda_``), scalars for one
        species or ``(S, S, S)`` tables; see `StillingerWeber.from_file`.
    species
        ``(N,)`` integer species per atom, or None for one species.
    max_neighbors
        Neighbours within the cut-off per atom the table holds (static, default 32).
    units
        The unit system of the parameters (``"metal"``, ``"reduced"``; static), or None
        (not labelled). `from_file` labels ``"metal"``; `hybrax.md.ase_calculator` refuses
        other units for a labelled potential.

    Examples
    --------
    >>> import os, hybrax.md as md
    >>> path = "/usr/share/lammps/potentials/Si.sw"
    >>> if os.path.exists(path):
    ...     sw = md.StillingerWeber.from_file(path, ["Si"])
    ... else:  # the Si parameters of that file
    ...     sw = md.StillingerWeber(2.1683, 2.0951, 1.80, 21.0, 1.20, -1 / 3, 7.049556277,
    ...                             0.6022245584, 4.0, 0.0)
    >>> round(sw.cutoff, 5)
    3.77118
    """

    epsilon: Float[Array, "S S S"]
    sigma: Float[Array, "S S S"]
    a: Float[Array, "S S S"]
    lambda_: Float[Array, "S S S"]
    gamma: Float[Array, "S S S"]
    cos_theta0: Float[Array, "S S S"]
    A: Float[Array, "S S S"]
    B: Float[Array, "S S S"]
    p: Float[Array, "S S S"]
    q: Float[Array, "S S S"]
    species: Int[Array, " N"] | None
    cutoff: float = eqx.field(static=True)
    max_neighbors: int = eqx.field(static=True)
    elements: tuple[str, ...] = eqx.field(static=True)
    units: str | None = eqx.field(static=True)

    def __init__(
        self,
        epsilon,
        sigma,
        a,
        lambda_,
        gamma,
        cos_theta0,
        A,
        B,
        p,
        q,
        *,
        species=None,
        max_neighbors: int = 32,
        elements: Sequence[str] | None = None,
        units: str | None = None,
    ):
        values = dict(
            epsilon=epsilon, sigma=sigma, a=a, lambda_=lambda_, gamma=gamma,
            cos_theta0=cos_theta0, A=A, B=B, p=p, q=q,
        )  # fmt: skip
        positive = ("sigma", "a")
        set_triplet_fields(self, values, positive, species, max_neighbors, elements)
        self.units = unit_label(units, "StillingerWeber")
        self.cutoff = static_cutoff("StillingerWeber", "a * sigma", a, sigma, lambda x, y: x * y)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        elements: Sequence[str],
        *,
        species=None,
        max_neighbors: int = 32,
    ) -> StillingerWeber:
        """Read a LAMMPS ``sw`` file; species ``s`` is ``elements[s]`` (as the element list
        of ``pair_coeff * * Si.sw Si``). A missing entry, a non-number or a truncated entry
        is a `hybrax.ConfigurationError` naming the file and line."""
        values = read_stillinger_weber(path, elements)
        values = {
            ("lambda_" if k == "lambda" else k): v for k, v in values.items() if k in SW_FIELDS[:-1]
        }
        return cls(
            **values,
            species=species,
            max_neighbors=max_neighbors,
            elements=elements,
            units="metal",
        )

    def _pair_parts(self, d, mask, table, species, atoms=None):
        """Per-entry pieces ``(r, unit, two, two', R, R')``: ``two`` the two-body term,
        ``R`` the radial factor of the three-body term, primes derivatives in ``r``."""
        dtype = d.dtype
        ij, _ = pair_and_triplet_species(table, species, atoms)
        get = lambda leaf, index: parameter(leaf, index, dtype)  # noqa: E731
        r = jnp.sqrt(jnp.sum(d * d, axis=-1))
        sigma, a = get(self.sigma, ij), get(self.a, ij)
        cut = a * sigma
        inside = mask & (r < cut)
        r = jnp.where(inside, r, 0.5 * cut)
        epsilon, A, B = get(self.epsilon, ij), get(self.A, ij), get(self.B, ij)
        p, q = get(self.p, ij), get(self.q, ij)
        c5 = A * epsilon * B * sigma**p
        c6 = A * epsilon * sigma**q
        log_r = jnp.log(r)  # r**-p as exp(-p log r): vectorised (XLA's CPU pow is not)
        rp, rq = c5 * jnp.exp(-p * log_r), c6 * jnp.exp(-q * log_r)
        power = rp - rq
        power_slope = (q * rq - p * rp) / r
        gap = 1.0 / (r - cut)
        cutoff_factor = jnp.exp(sigma * gap)
        two = jnp.where(inside, power * cutoff_factor, 0.0)
        two_slope = (power_slope - power * sigma * gap**2) * cutoff_factor
        two_slope = jnp.where(inside, two_slope, 0.0)
        gamma_sigma = get(self.gamma, ij) * sigma
        radial = jnp.where(inside, jnp.exp(gamma_sigma * gap), 0.0)
        radial_slope = -radial * gamma_sigma * gap**2
        unit = d / r[..., None]
        return r, unit, two, two_slope, radial, radial_slope

    def _parts(self, d, mask, table, species, atoms=None):
        """Per-entry and per-triplet pieces ``(r, unit, cos, two, two', R, R', h, h')``:
        `_pair_parts` and ``h`` the angular factor ``lambda epsilon (cos - cos0)^2`` (entry
        ``(i, j, k)``) and its derivative in ``cos``."""
        dtype = d.dtype
        _, ijk = pair_and_triplet_species(table, species, atoms)
        get = lambda leaf, index: parameter(leaf, index, dtype)  # noqa: E731
        r, unit, two, two_slope, radial, radial_slope = self._pair_parts(
            d, mask, table, species, atoms
        )
        cos = triplet_cosines(unit)
        strength = get(self.lambda_, ijk) * get(self.epsilon, ijk)
        offset = cos - get(self.cos_theta0, ijk)
        distinct = ~jnp.eye(table.shape[1], dtype=bool)[None]
        angular = jnp.where(distinct, strength * offset**2, 0.0)
        angular_slope = jnp.where(distinct, 2.0 * strength * offset, 0.0)
        return r, unit, cos, two, two_slope, radial, radial_slope, angular, angular_slope

    def local_energy(
        self,
        d: Float[Array, "N M 3"],
        mask: Bool[Array, "N M"],
        owner: Int[Array, "N M"],
        table: Int[Array, "N M"],
        species: Int[Array, " N"],
    ) -> Float[Array, " N"]:
        _, _, _, two, _, radial, _, angular, _ = self._parts(d, mask, table, species)
        three = angular * radial[:, :, None] * radial[:, None, :]
        return 0.5 * jnp.sum(two, axis=1) + 0.5 * jnp.sum(three, axis=(1, 2))

    def _evaluate(self, positions, neighbors, box):
        """Energy, forces and virial with the derivatives written out (the reverse pass XLA
        derives is several times slower on CPU): for atom ``i``'s neighbour ``j``,
        ``dE_i/dr_ij = u_j [two'_j / 2 + R'_j S_j - R_j A_j / r_j] + R_j V_j / r_j`` with
        ``S_j = sum_k H_jk R_k``, ``A_j = sum_k H'_jk R_k cos_jk``, ``V_j = sum_k H'_jk
        R_k u_k`` (``H`` the angular factor symmetrised over ``j, k``). With one
        ``lambda epsilon`` and ``cos0`` for every triplet (one species) the sums over
        ``k`` come from each atom's moments of its neighbour directions (`_moment_sums`:
        cost linear in the neighbours, not quadratic); else from the triplets."""
        moments = all(leaf.size == 1 for leaf in (self.lambda_, self.epsilon, self.cos_theta0))
        slots = self.max_neighbors * (1 if moments else self.max_neighbors)
        return row_block_pass(self, positions, neighbors, box, self._row_terms, slots)

    def _row_terms(self, d, mask, table, species, atoms):
        """Each row's energy and ``dE_i/dr_ij`` (see `_evaluate`)."""
        if all(leaf.size == 1 for leaf in (self.lambda_, self.epsilon, self.cos_theta0)):
            r, unit, two, two_slope, radial, radial_slope = self._pair_parts(
                d, mask, table, species, atoms
            )
            s, perpendicular = self._moment_sums(unit, radial)
            three = 0.5 * jnp.sum(radial * s, axis=1)
        else:
            parts = self._parts(d, mask, table, species, atoms)
            r, unit, cos, two, two_slope, radial, radial_slope, angular, angular_slope = parts
            symmetric = 0.5 * (angular + jnp.swapaxes(angular, 1, 2))
            symmetric_slope = 0.5 * (angular_slope + jnp.swapaxes(angular_slope, 1, 2))
            weights = symmetric_slope * radial[:, None, :]
            s = jnp.sum(symmetric * radial[:, None, :], axis=2)
            a = jnp.sum(weights * cos, axis=2)
            v = jnp.stack([jnp.sum(weights * unit[:, None, :, c], axis=2) for c in range(3)], -1)
            perpendicular = v - a[..., None] * unit
            three = 0.5 * jnp.sum(angular * radial[:, :, None] * radial[:, None, :], axis=(1, 2))
        energy = 0.5 * jnp.sum(two, axis=1) + three
        scale = 0.5 * two_slope + radial_slope * s
        return energy, unit * scale[..., None] + (radial / r)[..., None] * perpendicular

    def _moment_sums(self, unit, radial):
        """``S_j`` and ``V_j - A_j u_j`` of `_evaluate` for one ``lambda epsilon`` and
        ``cos0``: with ``H_jk = lambda epsilon (u_j . u_k - cos0)^2`` the sums over ``k``
        are quadratic forms in the moments ``m0 = sum_k R_k``, ``m1 = sum_k R_k u_k``,
        ``M2 = sum_k R_k u_k u_k^T``, less the ``k = j`` term (which drops out of
        ``V_j - A_j u_j``)."""
        dtype = unit.dtype
        strength = (self.lambda_ * self.epsilon).astype(dtype).reshape(())
        c0 = self.cos_theta0.astype(dtype).reshape(())
        u = [unit[..., a] for a in range(3)]
        ru = [radial * ua for ua in u]
        m0 = jnp.sum(radial, axis=1)[:, None]
        m1 = [jnp.sum(rua, axis=1)[:, None] for rua in ru]
        m2 = [[jnp.sum(ru[a] * u[b], axis=1)[:, None] for b in range(3)] for a in range(3)]
        m2u = [m2[a][0] * u[0] + m2[a][1] * u[1] + m2[a][2] * u[2] for a in range(3)]
        um2u = u[0] * m2u[0] + u[1] * m2u[1] + u[2] * m2u[2]
        um1 = u[0] * m1[0] + u[1] * m1[1] + u[2] * m1[2]
        s = strength * (um2u - 2.0 * c0 * um1 + c0 * c0 * m0 - (1.0 - c0) ** 2 * radial)
        along = um2u - c0 * um1
        perpendicular = [2.0 * strength * (m2u[a] - c0 * m1[a] - along * u[a]) for a in range(3)]
        return s, jnp.stack(perpendicular, axis=-1)


def static_cutoff(name: str, what: str, first, second, combine) -> float:
    """The largest per-triplet cut-off ``combine(first, second)``, as a static float
    computed in float64 from the parameters as given."""
    values = [
        v if isinstance(v, np.ndarray | float | int) else concrete_or_none(v)
        for v in (first, second)
    ]
    if any(v is None for v in values):
        raise ConfigurationError(
            f"{name}: the parameters that set the cut-off ({what}) must be concrete (not "
            "traced) when the potential is built, since the cut-off is static; build it "
            "outside jit and differentiate through the module"
        )
    first, second = (np.asarray(v, np.float64) for v in values)
    return float(np.max(combine(first, second)))

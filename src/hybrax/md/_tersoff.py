"""The Tersoff bond-order potential, parameters as in LAMMPS ``pair_style tersoff`` files."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, concrete_or_none

from ._manybody import (
    AbstractManyBodyEnergy,
    row_block_pass,
    triplet_cosines,
)
from ._potential_files import read_tersoff
from ._stillinger_weber import (
    pair_and_triplet_species,
    parameter,
    set_triplet_fields,
    static_cutoff,
)
from ._units import unit_label

__all__ = ["Tersoff"]

_EXP_LIMIT = 69.0776  # LAMMPS clamps exp(arg) of the zeta term beyond +-69.0776


# Taylor coefficients of sin x (odd powers up to x^21: error below 2e-17 for |x| <= pi / 2)
_SIN_COEFFICIENTS = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(11))


def _sin_half_pi(t: Array) -> Array:
    """``sin(pi t / 2)`` for ``t`` in ``[-1, 1]`` (clipped) as a polynomial: vectorised
    elementwise arithmetic, where XLA's CPU ``sin`` is a scalar libm call per element
    (and XLA fuses the cut-off into every triplet that reads it)."""
    x = 0.5 * math.pi * jnp.clip(t, -1.0, 1.0)
    x2 = x * x
    total = _SIN_COEFFICIENTS[-1]
    for c in _SIN_COEFFICIENTS[-2::-1]:
        total = total * x2 + c
    return x * total


def _cutoff_function(r: Array, R: Array, D: Array) -> Array:
    inner = 0.5 * (1.0 - _sin_half_pi((r - R) / D))
    return jnp.where(r < R - D, 1.0, jnp.where(r > R + D, 0.0, inner))


def _power(x: Array, y: Array) -> Array:
    """``x ** y`` for ``x > 0`` as ``exp(y log x)`` (vectorised; XLA's CPU ``pow`` is a
    scalar libm call per element)."""
    return jnp.exp(y * jnp.log(x))


def _bond_order(zeta: Array, beta: Array, n: Array) -> Array:
    """LAMMPS's ``ters_bij`` with its asymptotic branches."""
    tmp = beta * zeta
    c1 = _power(2.0 * n * 1.0e-16, -1.0 / n)
    c2 = _power(2.0 * n * 1.0e-8, -1.0 / n)
    c3, c4 = 1.0 / c2, 1.0 / c1
    large = jnp.maximum(tmp, c2)
    small = jnp.maximum(tmp, c4)
    middle = jnp.clip(tmp, c3, c2)
    return jnp.where(
        tmp > c1,
        1.0 / jnp.sqrt(large),
        jnp.where(
            tmp > c2,
            (1.0 - _power(large, -n) / (2.0 * n)) / jnp.sqrt(large),
            jnp.where(
                tmp < c4,
                1.0,
                jnp.where(
                    tmp < c3,
                    1.0 - _power(small, n) / (2.0 * n),
                    _power(1.0 + _power(middle, n), -1.0 / (2.0 * n)),
                ),
            ),
        ),
    )


class Tersoff(AbstractManyBodyEnergy):
    """Tersoff bond-order potential (Tersoff 1988, 1989), as LAMMPS ``pair_style tersoff``.

    .. math::
        E = \\frac12 \\sum_i \\sum_{j \\ne i} f_C(r_{ij}) [f_R(r_{ij}) + b_{ij} f_A(r_{ij})],
        \\quad f_R = A e^{-\\lambda_1 r}, \\quad f_A = -B e^{-\\lambda_2 r},

        b_{ij} = (1 + \\beta^n \\zeta_{ij}^n)^{-1/2n}, \\quad
        \\zeta_{ij} = \\sum_{k \\ne i,j} f_C(r_{ik}) g(\\theta_{ijk})
        e^{[\\lambda_3 (r_{ij} - r_{ik})]^m}, \\quad
        g = \\gamma \\Big(1 + \\frac{c^2}{d^2} - \\frac{c^2}{d^2 + (h - \\cos\\theta)^2}\\Big)

    with ``f_C`` LAMMPS's sine cut-off between ``R - D`` and ``R + D``. Every parameter is
    an ``(S, S, S)`` table over element triplets (a differentiable leaf): two-body terms
    and ``b_ij`` use entry ``(i, j, j)``, the ``k`` terms of ``zeta_ij`` entry
    ``(i, j, k)``, as in LAMMPS (including its asymptotic forms of ``b_ij`` and the clamp
    of the exponential). Units: LAMMPS ``metal`` (eV, Angstrom).

    Forces and virial have their derivatives written out (one pass over each atom's
    neighbour pairs). The per-atom neighbour tables are read fastest from a full Verlet
    table (``hybrax.md.neighbor_list(..., format="table")``: each row filtered to the
    cut-off in place); other lists' pairs are sorted by atom first.

    Parameters
    ----------
    m, gamma, lambda3, c, d, cos_theta0, n, beta, lambda2, B, R, D, lambda1, A
        The 14 LAMMPS ``tersoff`` parameters in file order (``cos_theta0`` is ``h``; ``m``
        must be 1 or 3), scalars for one species or ``(S, S, S)`` tables; see
        `Tersoff.from_file`.
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
    >>> path = "/usr/share/lammps/potentials/Si.tersoff"
    >>> if os.path.exists(path):
    ...     tersoff = md.Tersoff.from_file(path, ["Si"])
    ... else:  # the Si parameters of that file
    ...     tersoff = md.Tersoff(3.0, 1.0, 1.3258, 4.8381, 2.0417, 0.0, 22.956, 0.33675,
    ...                          1.3258, 95.373, 3.0, 0.2, 3.2394, 3264.7)
    >>> tersoff.cutoff
    3.2
    """

    m: Float[Array, "S S S"]
    gamma: Float[Array, "S S S"]
    lambda3: Float[Array, "S S S"]
    c: Float[Array, "S S S"]
    d: Float[Array, "S S S"]
    cos_theta0: Float[Array, "S S S"]
    n: Float[Array, "S S S"]
    beta: Float[Array, "S S S"]
    lambda2: Float[Array, "S S S"]
    B: Float[Array, "S S S"]
    R: Float[Array, "S S S"]
    D: Float[Array, "S S S"]
    lambda1: Float[Array, "S S S"]
    A: Float[Array, "S S S"]
    species: Int[Array, " N"] | None
    cutoff: float = eqx.field(static=True)
    max_neighbors: int = eqx.field(static=True)
    elements: tuple[str, ...] = eqx.field(static=True)
    units: str | None = eqx.field(static=True)

    def __init__(
        self,
        m,
        gamma,
        lambda3,
        c,
        d,
        cos_theta0,
        n,
        beta,
        lambda2,
        B,
        R,
        D,
        lambda1,
        A,
        *,
        species=None,
        max_neighbors: int = 32,
        elements: Sequence[str] | None = None,
        units: str | None = None,
    ):
        values = dict(
            m=m, gamma=gamma, lambda3=lambda3, c=c, d=d, cos_theta0=cos_theta0, n=n,
            beta=beta, lambda2=lambda2, B=B, R=R, D=D, lambda1=lambda1, A=A,
        )  # fmt: skip
        set_triplet_fields(self, values, ("d", "R", "D"), species, max_neighbors, elements)
        concrete = concrete_or_none(self.m)
        if concrete is not None and not ((concrete == 1.0) | (concrete == 3.0)).all():
            raise ConfigurationError(f"Tersoff: m must be 1 or 3, got {concrete.ravel().tolist()}")
        self.units = unit_label(units, "Tersoff")
        self.cutoff = static_cutoff("Tersoff", "R + D", R, D, lambda x, y: x + y)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        elements: Sequence[str],
        *,
        species=None,
        max_neighbors: int = 32,
    ) -> Tersoff:
        """Read a LAMMPS ``tersoff`` file; species ``s`` is ``elements[s]`` (as the element
        list of ``pair_coeff * * SiC.tersoff Si C``). A missing entry, a non-number or a
        truncated entry is a `hybrax.ConfigurationError` naming the file and line."""
        values = read_tersoff(path, elements)
        return cls(
            **values,
            species=species,
            max_neighbors=max_neighbors,
            elements=elements,
            units="metal",
        )

    def _evaluate(self, positions, neighbors, box):
        """Energy, forces and virial with the chain rule written out over the triplets
        (reductions over one neighbour axis; XLA's reverse pass is several times slower
        on CPU). Each elementwise factor's derivative comes from a forward-mode product
        with ones (so branches and clamps differentiate as in `local_energy`). With
        ``w_j = f_A(r_ij) b'(zeta_ij) / 2`` and ``zeta_ij = sum_k t_jk``, ``t_jk =
        f_C(r_ik) g(cos_jik) e(r_ij - r_ik)``, the derivative along ``r_ij`` collects the
        pair terms, ``w_j sum_k dt_jk/dr_ij`` and ``sum_l w_l dt_lj/dr_ij``; the angle
        terms ``Q_jk = w_j dt_jk/dcos + w_k dt_kj/dcos`` act along ``u_k - cos u_j``."""
        slots = self.max_neighbors * self.max_neighbors
        return row_block_pass(self, positions, neighbors, box, self._row_terms, slots)

    def _row_terms(self, d, mask, table, species, atoms):
        """Each row's energy and ``dE_i/dr_ij`` (see `_evaluate`)."""
        dtype = d.dtype
        ij, ijk = pair_and_triplet_species(table, species, atoms)
        get = lambda leaf, index: parameter(leaf, index, dtype)  # noqa: E731

        def slope(f, x):  # an elementwise f and its derivative
            return jax.jvp(f, (x,), (jnp.ones_like(x),))

        r = jnp.sqrt(jnp.sum(d * d, axis=-1))
        R, D = get(self.R, ij), get(self.D, ij)
        inside = mask & (r < R + D)
        fc, fc_slope = slope(lambda x: _cutoff_function(x, R, D), r)
        lambda1, lambda2 = get(self.lambda1, ij), get(self.lambda2, ij)
        repulsive = get(self.A, ij) * jnp.exp(-lambda1 * r)
        attractive = -get(self.B, ij) * jnp.exp(-lambda2 * r)
        repulsive_slope = (fc_slope - lambda1 * fc) * repulsive
        attractive_slope = (fc_slope - lambda2 * fc) * attractive
        repulsive, attractive = fc * repulsive, fc * attractive
        r_ij, r_ik = r[:, :, None], r[:, None, :]
        R3, D3 = get(self.R, ijk), get(self.D, ijk)
        distinct = ~jnp.eye(table.shape[1], dtype=bool)[None]
        counted = distinct & mask[:, None, :] & (r_ik < R3 + D3)
        unit = d / r[..., None]
        cos = triplet_cosines(unit)
        c2, d2 = get(self.c, ijk) ** 2, get(self.d, ijk) ** 2
        h, gamma = get(self.cos_theta0, ijk), get(self.gamma, ijk)
        g, g_slope = slope(lambda x: gamma * (1.0 + c2 / d2 - c2 / (d2 + (h - x) ** 2)), cos)
        lambda3, cubic = get(self.lambda3, ijk), get(self.m, ijk) == 3.0

        def exponential(gap):
            arg = lambda3 * gap
            arg = jnp.where(cubic, arg**3, arg)
            clamped = jnp.clip(arg, -_EXP_LIMIT, _EXP_LIMIT)
            return jnp.where(
                arg > _EXP_LIMIT, 1.0e30, jnp.where(arg < -_EXP_LIMIT, 0.0, jnp.exp(clamped))
            )

        e, e_slope = slope(exponential, r_ij - r_ik)
        if self.R.size == 1 and self.D.size == 1:  # f_C(r_ik) per neighbour, not per triplet
            f3, f3_slope = fc[:, None, :], fc_slope[:, None, :]
        else:
            f3, f3_slope = slope(
                lambda x: _cutoff_function(x, R3, D3), jnp.broadcast_to(r_ik, cos.shape)
            )
        zeta = jnp.sum(jnp.where(counted, f3 * g * e, 0.0), axis=2)
        b, b_slope = slope(lambda z: _bond_order(z, get(self.beta, ij), get(self.n, ij)), zeta)
        energy = jnp.sum(jnp.where(inside, 0.5 * repulsive + 0.5 * b * attractive, 0.0), axis=1)
        w = jnp.where(inside, 0.5 * attractive * b_slope, 0.0)
        direct = jnp.where(inside, 0.5 * repulsive_slope + 0.5 * b * attractive_slope, 0.0)
        along_ij = jnp.where(counted, f3 * g * e_slope, 0.0)  # dt_jk / dr_ij
        along_ik = jnp.where(counted, f3_slope * g * e - f3 * g * e_slope, 0.0)  # dt_jk/dr_ik
        angle = w[:, :, None] * jnp.where(counted, f3 * g_slope * e, 0.0)
        angle = angle + jnp.swapaxes(angle, 1, 2)
        radial = direct + w * jnp.sum(along_ij, axis=2)
        radial = radial + jnp.sum(w[:, :, None] * along_ik, axis=1)
        radial = radial - jnp.sum(angle * cos, axis=2) / r
        across = jnp.stack([jnp.sum(angle * unit[:, None, :, a], axis=2) for a in range(3)], -1)
        return energy, unit * radial[..., None] + across / r[..., None]

    def local_energy(
        self,
        d: Float[Array, "N M 3"],
        mask: Bool[Array, "N M"],
        owner: Int[Array, "N M"],
        table: Int[Array, "N M"],
        species: Int[Array, " N"],
    ) -> Float[Array, " N"]:
        dtype = d.dtype
        ij, ijk = pair_and_triplet_species(table, species)
        get = lambda leaf, index: parameter(leaf, index, dtype)  # noqa: E731
        r = jnp.sqrt(jnp.sum(d * d, axis=-1))
        R, D = get(self.R, ij), get(self.D, ij)
        inside = mask & (r < R + D)
        fc = _cutoff_function(r, R, D)
        repulsive = fc * get(self.A, ij) * jnp.exp(-get(self.lambda1, ij) * r)
        attractive = -get(self.B, ij) * jnp.exp(-get(self.lambda2, ij) * r) * fc
        # zeta_ij: k runs over i's other neighbours within the (i, j, k) cut-off
        r_ij, r_ik = r[:, :, None], r[:, None, :]
        R3, D3 = get(self.R, ijk), get(self.D, ijk)
        mask_k = mask[:, None, :] & (r_ik < R3 + D3)
        unit = d / r[..., None]
        cos = triplet_cosines(unit)
        c2, d2 = get(self.c, ijk) ** 2, get(self.d, ijk) ** 2
        g = get(self.gamma, ijk) * (
            1.0 + c2 / d2 - c2 / (d2 + (get(self.cos_theta0, ijk) - cos) ** 2)
        )
        arg = get(self.lambda3, ijk) * (r_ij - r_ik)
        arg = jnp.where(get(self.m, ijk) == 3.0, arg**3, arg)
        clamped = jnp.clip(arg, -_EXP_LIMIT, _EXP_LIMIT)
        exponential = jnp.where(
            arg > _EXP_LIMIT, 1.0e30, jnp.where(arg < -_EXP_LIMIT, 0.0, jnp.exp(clamped))
        )
        distinct = ~jnp.eye(table.shape[1], dtype=bool)[None]
        terms = _cutoff_function(r_ik, R3, D3) * g * exponential
        zeta = jnp.sum(jnp.where(distinct & mask_k, terms, 0.0), axis=2)
        b = _bond_order(zeta, get(self.beta, ij), get(self.n, ij))
        per_pair = 0.5 * repulsive + 0.5 * b * attractive
        return jnp.sum(jnp.where(inside, per_pair, 0.0), axis=1)

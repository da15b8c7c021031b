"""The Tersoff bond-order potential, parameters as in LAMMPS ``pair_style tersoff`` files."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, concrete_or_none

from ._manybody import AbstractManyBodyEnergy, triplet_cosines
from ._potential_files import read_tersoff
from ._stillinger_weber import pair_and_triplet_species, set_triplet_fields, static_cutoff

__all__ = ["Tersoff"]

_EXP_LIMIT = 69.0776  # LAMMPS clamps exp(arg) of the zeta term beyond +-69.0776


def _cutoff_function(r: Array, R: Array, D: Array) -> Array:
    inner = 0.5 * (1.0 - jnp.sin(0.5 * math.pi * (r - R) / D))
    return jnp.where(r < R - D, 1.0, jnp.where(r > R + D, 0.0, inner))


def _bond_order(zeta: Array, beta: Array, n: Array) -> Array:
    """LAMMPS's ``ters_bij`` with its asymptotic branches."""
    tmp = beta * zeta
    c1 = (2.0 * n * 1.0e-16) ** (-1.0 / n)
    c2 = (2.0 * n * 1.0e-8) ** (-1.0 / n)
    c3, c4 = 1.0 / c2, 1.0 / c1
    large = jnp.maximum(tmp, c2)
    small = jnp.maximum(tmp, c4)
    middle = jnp.clip(tmp, c3, c2)
    return jnp.where(
        tmp > c1,
        1.0 / jnp.sqrt(large),
        jnp.where(
            tmp > c2,
            (1.0 - large ** (-n) / (2.0 * n)) / jnp.sqrt(large),
            jnp.where(
                tmp < c4,
                1.0,
                jnp.where(
                    tmp < c3,
                    1.0 - small**n / (2.0 * n),
                    (1.0 + middle**n) ** (-1.0 / (2.0 * n)),
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
    ):
        values = dict(
            m=m, gamma=gamma, lambda3=lambda3, c=c, d=d, cos_theta0=cos_theta0, n=n,
            beta=beta, lambda2=lambda2, B=B, R=R, D=D, lambda1=lambda1, A=A,
        )  # fmt: skip
        set_triplet_fields(self, values, ("d", "R", "D"), species, max_neighbors, elements)
        concrete = concrete_or_none(self.m)
        if concrete is not None and not ((concrete == 1.0) | (concrete == 3.0)).all():
            raise ConfigurationError(f"Tersoff: m must be 1 or 3, got {concrete.ravel().tolist()}")
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
        return cls(**values, species=species, max_neighbors=max_neighbors, elements=elements)

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
        get = lambda leaf, index: leaf.astype(dtype)[index]  # noqa: E731
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

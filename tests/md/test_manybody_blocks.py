"""The three-body force passes over blocks of rows (`row_block_pass`, `_filter_rows`) and
the vectorised elementary functions of the Tersoff pass, against LAMMPS, numpy and the
libm forms they replace (float64)."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md
from hybrax.md._manybody import _filter_rows, row_block_pass, verlet_rows
from hybrax.md._tersoff import _bond_order, _cutoff_function, _sin_half_pi

REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "manybody_reference.npz")
SI_SW = (2.1683, 2.0951, 1.80, 21.0, 1.20, -1.0 / 3.0, 7.049556277, 0.6022245584, 4.0, 0.0)


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def system(reference):
    positions = jnp.asarray(reference["sw_si/positions"])
    box = md.PeriodicBox(jnp.asarray(reference["sw_si/lengths"]))
    return positions, box


def test_blocks_of_rows_equal_lammps(reference, system):
    """Over blocks of 7 rows (the last one padded), SW's energy, forces and virial still
    equal LAMMPS's to 1e-10 (the LAMMPS tests run one block)."""
    positions, box = system
    sw = md.StillingerWeber(*SI_SW)
    nbrs = md.CellNeighborList.build(positions, box, cutoff=sw.cutoff, skin=0.1, format="table")
    energy, forces, w = jax.jit(
        lambda x: row_block_pass(sw, x, nbrs, box, sw._row_terms, 16, block=7)
    )(positions)
    f_ref, w_ref = reference["sw_si/forces"], reference["sw_si/virial"]
    virial = np.asarray([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
    np.testing.assert_allclose(float(energy), reference["sw_si/energy"], rtol=1e-10)
    np.testing.assert_allclose(forces, f_ref, rtol=0, atol=1e-10 * np.max(np.abs(f_ref)))
    np.testing.assert_allclose(virial, w_ref, rtol=0, atol=1e-10 * np.max(np.abs(w_ref)))


def test_filtered_rows_over_blocks_equal_numpy(system):
    """A full Verlet table's rows filtered to the cut-off and compacted, over blocks of 5
    rows: each atom's neighbours within the cut-off, in the table's order."""
    positions, box = system
    cutoff, capacity = 3.0, 8
    sw = md.StillingerWeber(*SI_SW)  # the list of the LAMMPS tests (3.77 A + 0.1 A skin)
    nbrs = md.CellNeighborList.build(positions, box, cutoff=sw.cutoff, skin=0.1, format="table")
    table, valid = verlet_rows(nbrs)
    compact, filled, counts = jax.jit(_filter_rows, static_argnums=(4, 5, 6))(
        positions, table, valid, box, cutoff, capacity, 5
    )
    x, length = np.asarray(positions), np.asarray(box.lengths)
    table, valid = np.asarray(table), np.asarray(valid)
    compact, filled, counts = np.asarray(compact), np.asarray(filled), np.asarray(counts)
    for i in range(len(x)):
        d = x[table[i]] - x[i]
        d -= length * np.rint(d / length)
        kept = table[i][valid[i] & (np.sum(d * d, axis=1) < cutoff**2)]
        assert counts[i] == len(kept) <= capacity
        np.testing.assert_array_equal(compact[i][: len(kept)], kept)
        np.testing.assert_array_equal(filled[i], np.arange(capacity) < len(kept))


def test_sine_polynomial_and_cutoff():
    """The polynomial sine equals libm's to 1e-15 on [-1, 1] (and is clipped outside), so
    the Tersoff cut-off and its slope do too."""
    R, D = 3.0, 0.2

    @jax.jit
    def compare(t, r):
        exact = jnp.where(
            r < R - D,
            1.0,
            jnp.where(r > R + D, 0.0, 0.5 * (1 - jnp.sin(0.5 * math.pi * (r - R) / D))),
        )
        slope = jax.vmap(jax.grad(lambda x: _cutoff_function(x, jnp.asarray(R), jnp.asarray(D))))
        return (
            _sin_half_pi(t) - jnp.sin(0.5 * math.pi * t),
            _sin_half_pi(3.0 * t[-1]),
            _cutoff_function(r, jnp.asarray(R), jnp.asarray(D)) - exact,
            slope(r) + 0.25 * math.pi / D * jnp.cos(0.5 * math.pi * (r - R) / D),
        )

    r = jnp.linspace(2.5, 3.5, 1001)
    sine, clipped, cutoff, slope = compare(jnp.linspace(-1.0, 1.0, 20001), r)
    assert float(jnp.max(jnp.abs(sine))) < 1e-15 and float(clipped) == pytest.approx(1.0)
    assert float(jnp.max(jnp.abs(cutoff))) < 1e-15
    inside = (r > R - D) & (r < R + D)
    assert float(jnp.max(jnp.abs(slope[inside]))) < 1e-11


def test_bond_order_equals_the_pow_form():
    """LAMMPS's ``ters_bij`` (all five branches) with exp/log powers equals the form with
    ``**`` to 1e-13 relative, values and slopes."""
    beta, n = jnp.asarray(1.1e-6), jnp.asarray(0.78734)

    def reference(zeta):
        tmp = beta * zeta
        c1 = (2.0 * n * 1.0e-16) ** (-1.0 / n)
        c2 = (2.0 * n * 1.0e-8) ** (-1.0 / n)
        c3, c4 = 1.0 / c2, 1.0 / c1
        large, small, middle = jnp.maximum(tmp, c2), jnp.maximum(tmp, c4), jnp.clip(tmp, c3, c2)
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

    zeta = jnp.asarray(np.logspace(-30, 40, 141))
    tmp = float(beta) * np.asarray(zeta)
    assert tmp.min() < 1e-20 and tmp.max() > 1e20  # every branch
    pair = jax.jit(lambda f, z: (f(z), jax.vmap(jax.grad(f))(z)), static_argnums=0)
    value, slope = pair(lambda z: _bond_order(z, beta, n), zeta)
    expected_value, expected_slope = pair(reference, zeta)
    np.testing.assert_allclose(value, expected_value, rtol=1e-13)
    np.testing.assert_allclose(slope, expected_slope, rtol=1e-12, atol=0)

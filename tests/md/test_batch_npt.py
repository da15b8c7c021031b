"""NPT in padded batches (hybrax.md.simulate_batch with MartynaTobiasKlein): each system's
box follows its own pressure, and each system's trajectory, box and chains equal its run
alone; padding atoms keep zero velocity and ride their system's box."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

CUTOFF = 1.5  # boxes of 32 atoms (side ~3.4 sigma) stay wider than twice the cut-off
STEPS = 30


def _volume(state):
    return jnp.prod(state.barostat.lengths)


def _crystal(cells, density, count, tilts, seed):
    """The first ``count`` atoms of a perturbed fcc crystal, sheared affinely by ``tilts``
    (fractions of the side; None: an orthorhombic `PeriodicBox`), velocities at kT 1.2."""
    positions, box = md.lattice("fcc", cells, density=density, dtype=jnp.float64)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.04, positions.shape)
    v = rng.normal(0.0, 1.1, (count, 3))
    v = jnp.asarray(v - v.mean(axis=0))
    if tilts is None:
        return box.wrap(positions + noise)[:count], box, v
    side = float(box.lengths[0])
    cell = md.TriclinicBox.from_lammps(side, side, side, *(t * side for t in tilts))
    return cell.wrap(cell.cartesian(positions / box.lengths) + noise)[:count], cell, v


def _mtk(couple):
    lj = md.LennardJones(cutoff=CUTOFF)

    def make(box, masses):
        return md.MartynaTobiasKlein(
            lj, box, dt=0.004, temperature=1.5, pressure=1.0, tau=0.2, tau_barostat=0.5,
            masses=masses, couple=couple,
        )  # fmt: skip

    return make


def _run_batch_and_alone(systems, couple, compared):
    batch = md.SystemBatch.from_systems(systems)
    make = _mtk(couple)
    final, volumes = md.simulate_batch(
        make, batch, md.batch_neighbor_list(batch, CUTOFF), STEPS, chunk_size=STEPS,
        save_every=STEPS // 2, observe=_volume,
    )  # fmt: skip
    alone = []
    for x, box, v in (systems[b] for b in compared):
        stepper = make(box, 1.0)
        state = stepper.init(x, v, md.neighbor_list(x, box, CUTOFF))
        alone.append(
            md.simulate(
                stepper,
                state,
                STEPS,
                chunk_size=STEPS,
                save_every=STEPS // 2,
                observe=_volume,
                progress=False,
            )
        )
    return batch, final, volumes, alone


def _assert_matches_alone(final, b, alone):
    n = alone.positions.shape[0]
    for name in ("positions", "velocities", "forces"):
        np.testing.assert_allclose(
            getattr(final, name)[b, :n], getattr(alone, name), rtol=0, atol=1e-11, err_msg=name
        )
    for name in ("lengths", "velocities", "virial"):
        np.testing.assert_allclose(
            getattr(final.barostat, name)[b], getattr(alone.barostat, name), rtol=1e-11,
            atol=1e-12, err_msg=f"barostat.{name}",
        )  # fmt: skip
    np.testing.assert_allclose(
        final.thermostat.velocities[b], alone.thermostat.velocities, rtol=0, atol=1e-11
    )
    np.testing.assert_allclose(
        final.barostat.chain.velocities[b], alone.barostat.chain.velocities, rtol=0, atol=1e-11
    )


def test_isotropic_npt_batch_equals_single_runs():
    """Systems of 32 and 108 atoms at densities 0.7 and 1.0: each box follows its own
    pressure (one is compressed, the other expands), and every system's positions,
    velocities, box, strain rate, virial and both chains equal its run alone to round-off.
    The chains count each system's own 3 n_b - 3 degrees of freedom (with the padded count
    the 32-atom system would differ)."""
    systems = [
        _crystal(2, 0.7, 32, None, 0),
        _crystal(3, 1.0, 108, None, 2),
    ]
    batch, final, volumes, alone = _run_batch_and_alone(systems, "iso", (0, 1))
    assert volumes.shape == (2, 2)
    for b, (end, seen) in enumerate(alone):
        _assert_matches_alone(final, b, end)
        np.testing.assert_allclose(volumes[b], seen, rtol=1e-12)
    change = np.asarray(volumes[:, -1]) / np.asarray(batch.lengths.prod(axis=-1)) - 1.0
    # below the target pressure the dilute system is compressed, the dense one expands
    assert change[0] < -0.05 and change[1] > 0.05
    # padding keeps zero velocity and stays inside its system's (grown) box
    padding = ~batch.mask
    assert bool(jnp.all(jnp.where(padding[..., None], final.velocities == 0, True)))
    inside = (final.positions >= 0) & (final.positions < final.barostat.lengths[:, None])
    assert bool(jnp.all(inside))


@pytest.mark.slow
def test_flexible_npt_batch_of_sheared_cells_equals_single_runs(full_size):
    """couple="full" over a batch of triclinic cells (32 and 100 atoms, differently
    sheared): the cells' six strain rates and tilts follow each system's own pressure
    tensor as alone (checked for the 100-atom system, all three tilts; the orthorhombic
    test covers the padded one)."""
    if not full_size:
        pytest.skip(
            "compiles the flexible cell's step twice (~17 CPU-s; the isotropic test "
            "runs the same padded stepper by default): --runslow"
        )
    systems = [
        _crystal(2, 0.8442, 32, (0.2, 0.0, 0.0), 3),
        _crystal(3, 0.8, 100, (0.15, -0.1, 0.25), 4),
    ]
    _, final, _, [(end, _)] = _run_batch_and_alone(systems, "full", (1,))
    _assert_matches_alone(final, 1, end)
    np.testing.assert_allclose(final.barostat.tilts[1], end.barostat.tilts, atol=1e-12)
    assert float(jnp.max(jnp.abs(end.barostat.velocities))) > 1e-3  # the cell moved


def test_bad_input():
    systems = [_crystal(2, 0.8442, 32, None, 0), _crystal(2, 0.8442, 1, None, 1)]
    lj = md.LennardJones(cutoff=CUTOFF)
    batch = md.SystemBatch.from_systems(systems[:1] * 2)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)

    def fixed(box, m):
        return md.MartynaTobiasKlein(
            lj, box, dt=0.004, temperature=1.5, pressure=1.0, masses=m, degrees_of_freedom=90
        )

    with pytest.raises(
        hybrax.ConfigurationError, match=r"MartynaTobiasKlein\(degrees_of_freedom=90"
    ):
        md.simulate_batch(fixed, batch, nbrs, 2, chunk_size=2)
    single = md.SystemBatch.from_systems(systems)
    with pytest.raises(
        hybrax.ConfigurationError, match="system 1 has 1 atom; a MartynaTobiasKlein"
    ):
        md.simulate_batch(_mtk("iso"), single, md.batch_neighbor_list(single, CUTOFF), 2)

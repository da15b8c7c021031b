"""`md.simulate` and the run-time guards: neighbour lists reused in a changed box (the
equation-of-state scan), finite blow-ups (InstabilityError), overflow rebuilds."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

from .conftest import perturbed_fcc


def _all_pairs(positions, lengths, cutoff=2.5):
    """Shifted LJ energy and forces over all pairs, minimum image (NumPy, float64)."""
    p = np.asarray(positions, np.float64)
    d = p[:, None, :] - p[None, :, :]
    d -= lengths * np.round(d / lengths)
    r2 = np.sum(d * d, axis=-1)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < cutoff**2
    inv6 = np.where(inside, 1.0 / np.where(inside, r2, 1.0) ** 3, 0.0)
    c6 = cutoff**-6.0
    energy = 0.5 * np.sum(np.where(inside, 4 * inv6 * (inv6 - 1) - 4 * c6 * (c6 - 1), 0.0))
    weight = np.where(inside, 24 * inv6 * (2 * inv6 - 1) / np.where(inside, r2, 1.0), 0.0)
    return energy, np.sum(weight[..., None] * d, axis=1)


def _lj_energy_and_forces(positions, neighbors, box):
    return md.LennardJones(cutoff=2.5).energy_and_forces(positions, neighbors, box)


_energy_and_forces = eqx.filter_jit(_lj_energy_and_forces)


def _check_eos(positions, box, scales):
    """A list built at scale 1.0 and reused under jit + vmap over box scales (positions
    scaled with the box) equals all pairs to round-off where it does not flag, and is NaN
    where it flags; it flags exactly where its grid does not cover the box."""
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    assert isinstance(nbrs, md.CellNeighborList)

    def reused(scale):
        scaled_box = md.PeriodicBox(box.lengths * scale)
        p = positions * scale
        rebuilt = nbrs.update(p, scaled_box)
        energy, forces = _lj_energy_and_forces(p, rebuilt, scaled_box)
        return energy, forces, rebuilt.overflow, rebuilt.covers(scaled_box)

    energy, forces, flagged, covered = jax.jit(jax.vmap(reused))(jnp.asarray(scales))
    flagged, covered = np.asarray(flagged), np.asarray(covered)
    lengths = np.asarray(box.lengths)
    reference = [_all_pairs(np.asarray(positions) * s, lengths * s) for s in scales]
    np.testing.assert_array_equal(flagged, ~covered)
    assert (~flagged).sum() >= 3 and flagged.sum() >= 2
    for i, (e_ref, f_ref) in enumerate(reference):
        if flagged[i]:  # the grid cannot cover the compressed box: NaN, never wrong
            assert np.isnan(float(energy[i])) and np.all(np.isnan(np.asarray(forces[i])))
        else:
            np.testing.assert_allclose(energy[i], e_ref, rtol=1e-12)
            np.testing.assert_allclose(forces[i], f_ref, atol=1e-9)
    assert not flagged[list(scales).index(1.0)]
    assert np.all(flagged[np.asarray(scales) < 0.95])
    return nbrs, flagged, reference


def _check_rebuilt(nbrs, positions, box, scale, reference):
    """What simulate does for a flagged box: grow() builds a list for it."""
    scaled_box = md.PeriodicBox(box.lengths * scale)
    p = positions * scale
    rebuilt = nbrs.grow(p, scaled_box)
    assert not bool(rebuilt.overflow) and bool(rebuilt.covers(scaled_box))
    energy, forces = _energy_and_forces(p, rebuilt, scaled_box)
    np.testing.assert_allclose(energy, reference[0], rtol=1e-12)
    np.testing.assert_allclose(forces, reference[1], atol=1e-8)


def test_eos_scan_reused_list_equals_all_pairs_or_flags():
    """Probe row 47: a list built at scale 1.0 and reused under jit + vmap over box scales
    0.76 - 1.2 (864-atom LJ, float64) equals all pairs to round-off wherever it does not
    flag, and flags (NaN) where its cell grid no longer reaches cutoff + skin; a list
    rebuilt for the flagged box (`grow`, what `simulate` does) gives the right answer."""
    positions, box = perturbed_fcc(6, noise=0.1)
    scales = [0.76, 0.84, 0.92, 1.0, 1.1, 1.2]
    nbrs, flagged, reference = _check_eos(positions, box, scales)
    # both outcomes occur in this scan: reused where it still covers, flagged where not
    assert flagged.tolist() == [True, True, True, False, False, False]
    _check_rebuilt(nbrs, positions, box, 0.84, reference[1])


@pytest.mark.slow
def test_eos_scan_fine_grid_of_scales(full_size):
    cells = 10 if full_size else 6
    positions, box = perturbed_fcc(cells, noise=0.1)
    # steps of 0.02 in the scale (0.04 by default: half the vmapped batch and references)
    scales = [round(float(s), 10) for s in np.linspace(0.76, 1.2, 23 if full_size else 12)]
    nbrs, flagged, reference = _check_eos(positions, box, scales)
    assert flagged.any() and not flagged.all()
    for i in np.flatnonzero(flagged)[:: 1 if full_size else 5]:
        _check_rebuilt(nbrs, positions, box, scales[i], reference[i])


def test_state_with_a_list_for_another_box_raises_or_simulate_rebuilds(fcc500, key):
    """init with a list built for the uncompressed box: a NeighborListError naming the box
    by default; with on_overflow="flag" the state keeps the flag and simulate rebuilds the
    list for the new box (right forces, energy conserved)."""
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    scale = 0.8  # the 500-atom list's grid covers the box down to 0.83
    small_box, p = md.PeriodicBox(box.lengths * scale), positions * scale
    v = md.maxwell_boltzmann(key, p.shape[0], 0.5)
    lj = md.LennardJones(cutoff=2.5)
    with pytest.raises(hybrax.NeighborListError, match="another box"):
        md.VelocityVerlet(lj, small_box, dt=0.002).init(p, v, nbrs)
    flagging = md.VelocityVerlet(lj, small_box, dt=0.002, on_overflow="flag")
    state = flagging.init(p, v, nbrs)
    assert bool(state.neighbors.overflow) and np.isnan(float(state.potential_energy))
    with pytest.warns(md.NeighborListOverflowWarning):
        final, _ = md.simulate(flagging, state, 20, chunk_size=20, progress=False)
    assert not bool(final.neighbors.overflow)
    _, forces = _all_pairs(final.positions, np.asarray(small_box.lengths))
    np.testing.assert_allclose(final.forces, forces, atol=1e-8)
    fresh = flagging.init(p, v, md.neighbor_list(p, small_box, cutoff=2.5))
    expected, _ = md.simulate(flagging, fresh, 20, chunk_size=20, progress=False)
    np.testing.assert_allclose(final.positions, expected.positions, atol=1e-10)
    np.testing.assert_allclose(final.velocities, expected.velocities, atol=1e-10)


def test_unwrapped_positions_give_the_wrapped_answer(fcc500):
    """Probe row 50: update() under jit with positions shifted by +L (an unwrapped
    trajectory) used to overflow into NaN with no hint; the list sorts atoms by their
    wrapped coordinates, so the result equals the wrapped one."""
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    lj = md.LennardJones(cutoff=2.5)
    shifted = positions + box.lengths * jnp.array([1.0, -2.0, 3.0])

    @jax.jit
    def energy(p):
        rebuilt = nbrs.update(p, box)
        return lj.energy_and_forces(p, rebuilt, box), rebuilt.overflow

    (e_shift, f_shift), overflow = energy(shifted)
    (e_ref, f_ref), _ = energy(positions)
    assert not bool(overflow)
    np.testing.assert_allclose(e_shift, e_ref, rtol=1e-12)
    np.testing.assert_allclose(f_shift, f_ref, atol=1e-9)


def _cold_crystal(dt, **options):
    positions, box = md.lattice("fcc", 4, density=0.8442)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    v = 0.1 * md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], 1.0)
    stepper = md.VelocityVerlet(md.LennardJones(cutoff=2.5), box, dt=dt, **options)
    return stepper, stepper.init(positions, v, nbrs)


def test_finite_blow_up_raises_instability_error_naming_the_step():
    """Probe row 58: dt 40-100x too large gave finite garbage (|v| ~ 1e20) that passed
    check_finite. simulate raises InstabilityError naming the step and the fix."""
    stepper, state = _cold_crystal(0.2)
    with pytest.raises(hybrax.InstabilityError, match=r"step \d+ of 100.*smaller") as info:
        md.simulate(stepper, state, 100, chunk_size=50, progress=False)
    assert "dt=0.02" in str(info.value)


def test_finite_blow_up_in_a_users_own_rollout_raises():
    """The same blow-up in a plain rollout (the stepper's default raise policy) stops
    with a message that starts with InstabilityError, also under jax.jit + lax.scan."""
    stepper, state = _cold_crystal(0.2)
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"InstabilityError.*step \d+"):
        final, _ = hybrax.rollout(stepper, state, 100, save_every=None)
        jax.block_until_ready(final)

    @jax.jit
    def own_loop(s):
        return jax.lax.scan(lambda c, _: (stepper.step(c), None), s, None, length=100)[0]

    with pytest.raises(Exception, match="InstabilityError") as info:
        jax.block_until_ready(own_loop(state))
    assert isinstance(info.value, (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError))


def test_stable_run_is_not_flagged_and_limit_can_be_changed():
    stepper, state = _cold_crystal(0.005)
    final, _ = md.simulate(stepper, state, 50, chunk_size=50, progress=False)
    assert np.isfinite(float(final.potential_energy))
    assert stepper.displacement_limit(state.neighbors) == 1.25  # max(skin, cutoff / 2)
    loose, _ = _cold_crystal(0.005, max_displacement=1e9)
    assert loose.displacement_limit(state.neighbors) == 1e9
    for bad in (-1.0, 0.0, float("nan"), "1", True):
        with pytest.raises(hybrax.ConfigurationError, match="max_displacement"):
            _cold_crystal(0.005, max_displacement=bad)


def test_simulate_argument_errors(wrong_type):
    stepper, state = _cold_crystal(0.005)
    with pytest.raises(hybrax.ConfigurationError, match="n_steps"):
        md.simulate(stepper, state, -1, progress=False)
    with pytest.raises(hybrax.ConfigurationError, match="chunk_size"):
        md.simulate(stepper, state, 10, chunk_size=0, progress=False)
    with pytest.raises(hybrax.ConfigurationError, match="save_every"):
        md.simulate(stepper, state, 10, chunk_size=10, save_every=3, progress=False)
    with wrong_type("stepper", hybrax.ConfigurationError, "MD stepper"):
        md.simulate(hybrax.RK4(hybrax.climate.Lorenz63(), dt=0.01), state, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md.simulate(stepper, state, 10, chunk_size=10, progress=False)  # nothing to warn

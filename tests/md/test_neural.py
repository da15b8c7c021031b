"""Neural MD potentials: forces are -grad U, invariances, smooth cut-off, neighbour-list
paths agree, transforms, composition with analytic energies, training loss, bad input."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md
from hybrax.md import EnergyForceLoss, NeuralPairPotential, SchNetPotential, label_frames
from hybrax.nn import BesselBasis, CosineEnvelope, GaussianBasis, PolynomialEnvelope


def key(seed: int):
    """A cheap-to-compile PRNG key for network initialisation in tests."""
    return jax.random.key(seed, impl="rbg")


def liquid_like(cells: int = 3, *, noise: float = 0.1, seed: int = 0, density: float = 0.8442):
    """A perturbed fcc configuration (float64) and its periodic box."""
    positions, box = md.lattice("fcc", cells, density=density, dtype=jnp.float64)
    rng = np.random.default_rng(seed)
    shifted = np.asarray(positions) + rng.normal(0.0, noise, positions.shape)
    return box.wrap(jnp.asarray(shifted)), box


def cluster(num: int = 8, seed: int = 1):
    """Atoms in free space, no two closer than 0.9 sigma."""
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < num:
        p = rng.uniform(0.0, 2.4, 3)
        if all(np.linalg.norm(p - q) > 0.9 for q in points):
            points.append(p)
    return jnp.asarray(np.array(points))


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


CUTOFF = 2.0
PAIR = NeuralPairPotential(CUTOFF, key=key(0), width_size=16, depth=2, dtype=jnp.float64)
PAIR_TABLE = NeuralPairPotential(
    CUTOFF, key=key(0), width_size=16, depth=2, num_knots=1024, dtype=jnp.float64
)
# with the repulsive prior; core radius 1.2 so that the wall matters in `cluster` (>= 0.9)
PAIR_CORE = NeuralPairPotential(
    CUTOFF, key=key(0), width_size=16, depth=2, core_radius=1.2, dtype=jnp.float64
)
PAIR_CORE_TABLE = NeuralPairPotential(
    CUTOFF, key=key(0), width_size=16, depth=2, num_knots=1024, core_radius=1.2, dtype=jnp.float64
)
SPECIES = jnp.asarray(np.arange(8) % 2, jnp.int32)
SCHNET = SchNetPotential(
    CUTOFF, key=key(1), num_features=8, num_interactions=2, species=SPECIES, dtype=jnp.float64
)
SCHNET_ONE = SchNetPotential(
    CUTOFF, key=key(1), num_features=8, num_interactions=2, dtype=jnp.float64
)


@eqx.filter_jit
def energy_and_forces(potential, positions, neighbors, box):
    return potential.energy_and_forces(positions, neighbors, box)


@eqx.filter_jit
def energy_of(potential, positions, neighbors, box):
    return potential.energy(positions, neighbors, box)


# ---------------------------------------------------------------------- radial features
def test_bases_and_envelopes():
    x = jnp.linspace(0.05, 1.0, 20)
    bessel = BesselBasis(6)(x)
    assert bessel.shape == (20, 6)
    np.testing.assert_allclose(bessel[-1], 0.0, atol=1e-12)  # every Bessel function is 0 at rc
    gauss = GaussianBasis(5, start=0.2)(x)
    assert gauss.shape == (20, 5) and float(gauss.max()) <= 1.0
    for envelope in (PolynomialEnvelope(6), CosineEnvelope()):
        np.testing.assert_allclose(envelope(jnp.asarray(0.0)), 1.0, atol=1e-12)
        np.testing.assert_allclose(envelope(jnp.asarray([1.0, 1.3])), 0.0, atol=1e-12)
        slope = jax.grad(envelope)(jnp.asarray(1.0 - 1e-9))
        assert abs(float(slope)) < 1e-6
    curvature = jax.grad(jax.grad(PolynomialEnvelope(6)))(jnp.asarray(1.0 - 1e-9))
    assert abs(float(curvature)) < 1e-5  # DimeNet's envelope is C2 at the cut-off
    with pytest.raises(ValueError, match="num_basis"):
        GaussianBasis(1)
    with pytest.raises(ValueError, match="start"):
        GaussianBasis(8, start=1.0)


# ---------------------------------------------------------------------- forces = -grad U
POTENTIALS = {
    "pair": PAIR,
    "pair_table": PAIR_TABLE,
    "pair_core": PAIR_CORE,
    "pair_core_table": PAIR_CORE_TABLE,
    "schnet": SCHNET,
}


@pytest.mark.parametrize("name", ["pair", "pair_table", "pair_core", "pair_core_table", "schnet"])
def test_forces_match_finite_differences(name, finite_difference):
    potential = POTENTIALS[name]
    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=CUTOFF)
    energy, forces = energy_and_forces(potential, positions, nbrs, box)
    np.testing.assert_allclose(energy, energy_of(potential, positions, nbrs, box), rtol=1e-12)
    assert float(jnp.max(jnp.abs(forces))) > 1e-3  # a non-trivial test
    rng = np.random.default_rng(3)
    for _ in range(3):
        direction = jnp.asarray(rng.standard_normal(positions.shape))
        numeric = finite_difference(
            lambda p: energy_of(potential, p, nbrs, box), positions, direction, eps=1e-4
        )
        # (the table is piecewise cubic: differences across knots are a little less exact)
        rtol = 1e-5 if name.endswith("_table") else 1e-7
        np.testing.assert_allclose(-jnp.sum(forces * direction), numeric, rtol=rtol, atol=1e-9)


@eqx.filter_jit
def values_and_slopes(potential, r):
    """phi(r) and dphi/dr, compiled once per potential (eager vmap(grad) costs ~10x more)."""
    return potential.pair_potential(r), jax.vmap(jax.grad(potential.pair_potential))(r)


def test_tabulated_pair_potential_matches_the_network():
    r = jnp.linspace(0.7, CUTOFF + 0.3, 301)
    direct, slope = values_and_slopes(PAIR, r)
    table, table_slope = values_and_slopes(PAIR_TABLE, r)
    # cubic Hermite error ~ h^4 max|d4 phi / dx4| / 384 with h = 1 / 1024 of the cut-off
    np.testing.assert_allclose(table, direct, atol=1e-7 * float(jnp.max(jnp.abs(direct))))
    np.testing.assert_allclose(table[r >= CUTOFF], 0.0)
    np.testing.assert_allclose(table_slope, slope, atol=1e-5 * float(jnp.max(jnp.abs(slope))))


# ---------------------------------------------------------------------- invariances
@pytest.mark.parametrize("name", ["pair", "pair_core", "schnet"])
def test_rotation_translation_permutation_invariance(name):
    potential = POTENTIALS[name]
    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=CUTOFF)
    energy, forces = energy_and_forces(potential, positions, nbrs, box)

    rotation = jnp.asarray(random_rotation(4))
    moved = positions @ rotation.T + jnp.asarray([0.3, -1.2, 2.0])
    e2, f2 = energy_and_forces(potential, moved, nbrs, box)
    np.testing.assert_allclose(e2, energy, rtol=1e-12)
    np.testing.assert_allclose(f2, forces @ rotation.T, atol=1e-10)  # forces co-rotate

    order = np.random.default_rng(5).permutation(positions.shape[0])
    permuted = potential
    if potential.species is not None:
        permuted = eqx.tree_at(lambda p: p.species, potential, potential.species[order])
    e3, f3 = energy_and_forces(permuted, positions[order], nbrs, box)
    np.testing.assert_allclose(e3, energy, rtol=1e-12)
    np.testing.assert_allclose(f3, forces[order], atol=1e-10)
    np.testing.assert_allclose(jnp.sum(forces, axis=0), 0.0, atol=1e-10)  # momentum


def test_periodic_translation_invariance_and_cells_equal_dense():
    """Cell-list energies and forces equal the all-pairs ones, for both potentials, and a
    rigid shift across the periodic boundary changes nothing."""
    positions, box = liquid_like(3)  # 108 atoms, box 5.04: cells need cutoff + skin <= 2
    pair = NeuralPairPotential(1.6, key=key(2), width_size=16, dtype=jnp.float64)
    schnet = SchNetPotential(1.6, key=key(3), num_features=8, num_interactions=2, dtype=jnp.float64)
    cells = md.CellNeighborList.build(positions, box, cutoff=1.6, skin=0.2)
    dense = md.DenseNeighborList.build(positions, box, cutoff=1.6, skin=0.2)
    assert isinstance(cells, md.CellNeighborList) and isinstance(dense, md.DenseNeighborList)
    shifted = box.wrap(positions + jnp.asarray([2.1, -0.7, 3.3]))
    for potential in (pair, schnet):
        e_cells, f_cells = energy_and_forces(potential, positions, cells, box)
        e_dense, f_dense = energy_and_forces(potential, positions, dense, box)
        np.testing.assert_allclose(e_cells, e_dense, rtol=1e-11)
        np.testing.assert_allclose(f_cells, f_dense, atol=1e-10)
        e_shift, f_shift = energy_and_forces(potential, shifted, dense, box)
        np.testing.assert_allclose(e_shift, e_dense, rtol=1e-11)
        np.testing.assert_allclose(f_shift, f_dense, atol=1e-10)


# ---------------------------------------------------------------------- smooth cut-off
@pytest.mark.parametrize("name", ["pair", "pair_core", "schnet"])
def test_energy_and_force_vanish_smoothly_at_the_cutoff(name):
    """Two atoms pulled apart through the cut-off: the interaction energy and the force go
    to zero continuously (like (rc - r)^3 with the polynomial envelope)."""
    potential = {"pair": PAIR, "pair_core": PAIR_CORE, "schnet": SCHNET_ONE}[name]
    box = md.FreeSpace()
    pair_positions = jnp.zeros((2, 3))
    nbrs = md.DenseNeighborList.build(pair_positions, box, cutoff=CUTOFF)

    @jax.jit
    def energy_force(r):
        p = jnp.zeros((2, 3)).at[1, 0].set(r)
        e, f = potential.energy_and_forces(p, nbrs, box)
        return e, f[1, 0]

    far, _ = energy_force(jnp.asarray(CUTOFF + 0.5))
    for gap, scale in [(1e-2, 1e-5), (1e-3, 1e-8)]:
        e_in, f_in = energy_force(jnp.asarray(CUTOFF - gap))
        e_out, f_out = energy_force(jnp.asarray(CUTOFF + gap))
        assert abs(float(e_in - far)) < 100 * scale * max(1.0, abs(float(far)))
        assert abs(float(e_out - far)) < 1e-12 and abs(float(f_out)) < 1e-12
        assert abs(float(f_in)) < 100 * scale / gap
    e_mid, _ = energy_force(jnp.asarray(1.1))
    assert abs(float(e_mid - far)) > 1e-6  # it does interact inside the cut-off


# ---------------------------------------------------------------------- repulsive prior
@pytest.mark.parametrize("num_knots", [None, 1024])
def test_core_repulsion_keeps_an_attractive_network_repulsive_at_short_range(num_knots):
    """A network that extrapolates to a deep attraction at short range (output bias -50,
    the failure that lets atoms fuse): without the prior two atoms pushed together are
    pulled further in; with ``core_radius`` the pair energy is exactly the network's plus
    ``u(r / rc) (r_core / r)^12``, it rises monotonically as r -> 0, and the force pushes
    the atoms apart, while the energy stays finite."""

    def attractive(core_radius):
        net = NeuralPairPotential(
            CUTOFF,
            key=key(0),
            width_size=16,
            num_knots=num_knots,
            core_radius=core_radius,
            dtype=jnp.float64,
        )
        return eqx.tree_at(lambda p: p.mlp.layers[-1].bias, net, jnp.full((1,), -50.0))

    bare, walled = attractive(None), attractive(0.9)
    r = jnp.linspace(0.1, 0.8, 71)
    slope_bare = jax.vmap(jax.grad(bare.pair_potential))(r)
    assert float(jnp.max(bare.pair_potential(r))) < 0.0 and float(jnp.max(slope_bare)) > 0.0
    x = r / CUTOFF
    prior = PolynomialEnvelope(6)(x) * (0.9 / r) ** 12
    np.testing.assert_allclose(
        walled.pair_potential(r), bare.pair_potential(r) + prior, rtol=1e-10, atol=1e-8
    )
    slope = jax.vmap(jax.grad(walled.pair_potential))(r[r < 0.6])
    assert float(jnp.max(slope)) < 0.0  # monotone: repulsive wherever the wall dominates
    assert float(walled.pair_potential(0.3)) > 1e4

    box = md.FreeSpace()
    close = jnp.asarray([[0.0, 0.0, 0.0], [0.4, 0.0, 0.0]])
    nbrs = md.DenseNeighborList.build(close, box, cutoff=CUTOFF)
    _, f_bare = energy_and_forces(bare, close, nbrs, box)
    energy, forces = energy_and_forces(walled, close, nbrs, box)
    assert float(f_bare[1, 0]) < 0.0  # the bare network pulls the atoms together
    assert bool(jnp.isfinite(energy)) and float(forces[1, 0]) > 0.0  # the wall pushes apart
    assert walled.core_repulsion(jnp.asarray(CUTOFF**2)) == 0.0
    np.testing.assert_allclose(bare.core_repulsion(r * r), 0.0)


def test_core_radius_is_checked(wrong_type):
    for bad in (-0.5, 0.0, float("nan")):
        with pytest.raises(hybrax.ConfigurationError, match="core_radius"):
            NeuralPairPotential(CUTOFF, key=key(0), core_radius=bad)
    with wrong_type("core_radius", hybrax.ConfigurationError, "core_radius"):
        NeuralPairPotential(CUTOFF, key=key(0), core_radius="0.9")
    with pytest.raises(hybrax.ConfigurationError, match=r"core_radius must lie below the cutoff"):
        NeuralPairPotential(CUTOFF, key=key(0), core_radius=CUTOFF)


# ---------------------------------------------------------------------- species
def test_pair_species_channels_are_symmetric_and_distinct():
    species = jnp.asarray([0, 1, 2, 1, 0, 2, 2, 0], jnp.int32)
    potential = NeuralPairPotential(
        CUTOFF, key=key(6), width_size=16, species=species, dtype=jnp.float64
    )
    assert potential.num_species == 3 and potential.mlp.out_size == 6
    r = jnp.linspace(0.9, 1.9, 7)
    for a in range(3):
        for b in range(3):
            np.testing.assert_allclose(
                potential.pair_potential(r, a, b), potential.pair_potential(r, b, a)
            )
    difference = potential.pair_potential(r, 0, 1) - potential.pair_potential(r, 0, 2)
    assert float(jnp.max(jnp.abs(difference))) > 1e-4

    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=CUTOFF)
    total = 0.0
    for i in range(8):
        for j in range(i + 1, 8):
            distance = jnp.linalg.norm(positions[i] - positions[j])
            total += potential.pair_potential(distance, int(species[i]), int(species[j]))
    np.testing.assert_allclose(energy_of(potential, positions, nbrs, box), total, rtol=1e-12)


# ---------------------------------------------------------------------- transforms
def test_jit_vmap_grad():
    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=CUTOFF)
    batch = jnp.stack([positions, positions * 1.02, positions * 0.98])
    for potential in (PAIR_TABLE, SCHNET):
        batched = jax.jit(jax.vmap(lambda p, pot=potential: pot.energy(p, nbrs, box)))(batch)
        one_by_one = jnp.stack([energy_of(potential, p, nbrs, box) for p in batch])
        np.testing.assert_allclose(batched, one_by_one, rtol=1e-12)

    # gradient of a force-matching loss with respect to a weight, against a difference
    target = jnp.asarray(np.random.default_rng(7).standard_normal(positions.shape))

    def loss(potential):
        return jnp.sum((potential.forces(positions, nbrs, box) - target) ** 2)

    for potential, where in [
        (PAIR_TABLE, lambda p: p.mlp.layers[1].weight),
        (SCHNET, lambda p: p.interactions[0].filter.layers[0].weight),
    ]:
        grads = eqx.filter_jit(eqx.filter_grad(loss))(potential)
        index = np.unravel_index(np.argmax(np.abs(where(grads))), where(grads).shape)
        eps = 1e-6

        def bumped(step, where=where, index=index, potential=potential):
            return eqx.tree_at(where, potential, where(potential).at[index].add(step))

        loss_jit = eqx.filter_jit(loss)
        numeric = (loss_jit(bumped(eps)) - loss_jit(bumped(-eps))) / (2 * eps)
        assert abs(float(numeric)) > 1e-3
        np.testing.assert_allclose(where(grads)[index], numeric, rtol=1e-5)


# ---------------------------------------------------------------------- composition
def test_neural_terms_add_to_lennard_jones_in_an_integrator():
    positions, box = liquid_like(3, noise=0.03)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    neural = NeuralPairPotential(
        2.5, key=key(8), width_size=16, num_knots=512, energy_scale=0.05, dtype=jnp.float64
    )
    total = md.LennardJones(epsilon=0.8, cutoff=2.5) + neural
    assert isinstance(total, md.SumEnergy) and total.required_cutoff == 2.5
    e_sum, f_sum = energy_and_forces(total, positions, nbrs, box)
    e_lj, f_lj = energy_and_forces(total.terms[0], positions, nbrs, box)
    e_nn, f_nn = energy_and_forces(neural, positions, nbrs, box)
    np.testing.assert_allclose(e_sum, e_lj + e_nn, rtol=1e-12)
    np.testing.assert_allclose(f_sum, f_lj + f_nn, atol=1e-10)
    np.testing.assert_allclose(
        f_sum, -jax.grad(energy_of, argnums=1)(total, positions, nbrs, box), atol=1e-9
    )

    stepper = md.VelocityVerlet(total, box, dt=0.002)
    velocities = md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], 0.5, dtype=jnp.float64)
    state = stepper.init(positions, velocities, nbrs)
    _, energies = md.simulate(
        stepper, state, 200, chunk_size=200, save_every=20, observe=md.total_energy, progress=False
    )
    start = float(md.total_energy(state))
    assert np.all(np.abs(np.asarray(energies) - start) < 2e-3 * abs(start))


# ---------------------------------------------------------------------- loss and data
def test_label_frames_and_energy_force_loss(wrong_type):
    positions, box = liquid_like(3)
    frames = jnp.stack([positions, box.wrap(positions + 0.05), box.wrap(positions - 0.1)])
    template, _ = md.lattice("fcc", 3, density=0.8442, dtype=jnp.float64)
    # a list sized for the perfect crystal overflows on the perturbed frames: it is regrown
    small = md.CellNeighborList.build(template, box, cutoff=1.6, skin=0.1, capacity_multiplier=1.0)
    lj = md.LennardJones(cutoff=1.6)
    data = label_frames(lj, frames, box, small)
    assert data.num_frames == 3 and not bool(jnp.any(data.neighbors.overflow))
    dense = md.DenseNeighborList.build(positions, box, cutoff=1.6)
    for k in range(3):
        e, f = energy_and_forces(lj, frames[k], dense, box)
        np.testing.assert_allclose(data.energies[k], e, rtol=1e-11)
        np.testing.assert_allclose(data.forces[k], f, atol=1e-9)
    assert data[1:].num_frames == 2

    loss = EnergyForceLoss(box, energy_weight=2.0, force_weight=0.5)
    assert float(eqx.filter_jit(loss)(lj, data)) < 1e-20  # the reference fits itself
    pair = NeuralPairPotential(1.6, key=key(9), width_size=8, dtype=jnp.float64)
    labels = [energy_and_forces(pair, frames[k], dense, box) for k in range(3)]
    e_nn = jnp.stack([e for e, _ in labels])
    f_nn = jnp.stack([f for _, f in labels])
    n = positions.shape[0]
    expected = 2.0 * jnp.mean(((e_nn - data.energies) / n) ** 2) + 0.5 * jnp.mean(
        (f_nn - data.forces) ** 2
    )
    np.testing.assert_allclose(eqx.filter_jit(loss)(pair, data), expected, rtol=1e-10)
    with wrong_type("batch", hybrax.ConfigurationError, "LabelledFrames"):
        loss(pair, (frames, data.energies))


# ---------------------------------------------------------------------- bad input
def test_bad_input_messages(wrong_type):
    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=CUTOFF)
    float32 = NeuralPairPotential(CUTOFF, key=key(0), width_size=4, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"dtype=positions\.dtype"):
        float32.energy(positions, nbrs, box)
    with pytest.raises(ValueError, match="neighbour list"):
        PAIR.energy(positions, None, box)
    with pytest.raises(ValueError, match="neighbour list"):
        SCHNET.energy(positions, None, box)
    with pytest.raises(ValueError, match="cutoff"):
        NeuralPairPotential(-1.0, key=key(0))
    with wrong_type("basis", hybrax.ConfigurationError, "radial basis"):
        NeuralPairPotential(CUTOFF, key=key(0), basis=PolynomialEnvelope())
    with pytest.raises(ValueError, match=r"species values must lie in \[0, 2\)"):
        NeuralPairPotential(CUTOFF, key=key(0), species=jnp.asarray([0, 2]), num_species=2)
    with wrong_type("species", hybrax.ConfigurationError, "1-D integer array"):
        SchNetPotential(CUTOFF, key=key(0), species=jnp.asarray([0.0, 1.0]))
    short = md.DenseNeighborList.build(positions, box, cutoff=1.0)
    with pytest.raises(ValueError, match="cutoff"):
        SCHNET.energy(positions, short, box)
    with pytest.raises(ValueError, match="species has shape"):
        SCHNET.energy(positions[:5], md.neighbor_list(positions[:5], box, CUTOFF), box)
    with pytest.raises(ValueError, match="num_knots"):
        NeuralPairPotential(CUTOFF, key=key(0), num_knots=2)


def test_label_frames_that_keep_overflowing_raise_neighbor_list_error(monkeypatch):
    positions, box = liquid_like(3)
    frames = jnp.stack([positions, box.wrap(positions + 0.05), box.wrap(positions - 0.1)])
    template, _ = md.lattice("fcc", 3, density=0.8442, dtype=jnp.float64)
    fitted = md.CellNeighborList.build(template, box, cutoff=1.6, skin=0.1, capacity_multiplier=1.0)
    small = dataclasses.replace(fitted, widths=tuple(max(1, w // 2) for w in fitted.widths))
    assert bool(jnp.any(jax.vmap(lambda p: small.update(p, box).overflow)(frames)))
    monkeypatch.setattr(md.CellNeighborList, "grow", lambda self, positions, box: small)
    with pytest.raises(hybrax.NeighborListError, match="label_frames"):
        label_frames(md.LennardJones(cutoff=1.6), frames, box, small)

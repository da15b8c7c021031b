import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md


def central_difference(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    flat = np.asarray(x, np.float64).ravel()
    for k in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[k] += h
        down[k] -= h
        grad.ravel()[k] = (
            f(jnp.asarray(up.reshape(x.shape))) - f(jnp.asarray(down.reshape(x.shape)))
        ) / (2 * h)
    return grad


class Elementwise(eqx.Module):
    """Wraps an MLP R -> R to act elementwise on distances (a neural pair potential)."""

    mlp: eqx.nn.MLP

    def __call__(self, r):
        return jax.vmap(lambda x: self.mlp(x[None])[0])(r.ravel()).reshape(r.shape)


def cluster(num=6, seed=1):
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < num:
        p = rng.uniform(0.0, 2.2, 3)
        if all(np.linalg.norm(p - q) > 0.95 for q in points):
            points.append(p)
    return jnp.asarray(np.array(points) + 1.0)


ENERGIES = {
    "lj": md.LennardJones(cutoff=2.5),
    "smooth_lj": md.SmoothLennardJones(onset=2.0, cutoff=2.5),
    "morse": md.Morse(epsilon=0.8, alpha=3.0, r0=1.2, cutoff=2.5),
    "soft_sphere": md.SoftSphere(epsilon=2.0, sigma=1.3, alpha=2.5),
    "yukawa": md.PairPotential(lambda r: jnp.exp(-1.5 * r) / r, cutoff=2.5),
    "bonds": md.HarmonicBonds(jnp.array([[0, 1], [1, 2], [2, 3]]), 50.0, 1.1),
    "angles": md.HarmonicAngles(jnp.array([[0, 1, 2], [1, 2, 3]]), 20.0, 1.8),
}


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_forces_match_central_differences(name):
    energy = ENERGIES[name]
    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    forces = energy.forces(positions, nbrs, box)
    energy_fn = jax.jit(lambda p: energy.energy(p, nbrs, box))
    numeric = -central_difference(lambda p: float(energy_fn(p)), positions)
    np.testing.assert_allclose(forces, numeric, atol=1e-6 * max(1.0, np.max(np.abs(numeric))))
    autodiff = -jax.grad(energy.energy)(positions, nbrs, box)
    np.testing.assert_allclose(forces, autodiff, rtol=1e-10, atol=1e-10)


def test_periodic_cell_list_forces_match_finite_differences(fcc500):
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    lj = md.SmoothLennardJones(onset=2.0, cutoff=2.5)
    forces = lj.forces(positions, nbrs, box)
    energy = jax.jit(lambda p: lj.energy(p, nbrs, box))
    rng = np.random.default_rng(3)
    for atom in rng.choice(positions.shape[0], 4, replace=False):
        for axis in range(3):
            h = 1e-5
            up = positions.at[atom, axis].add(h)
            down = positions.at[atom, axis].add(-h)
            numeric = -(float(energy(up)) - float(energy(down))) / (2 * h)
            assert abs(float(forces[atom, axis]) - numeric) < 1e-6 * max(1.0, abs(numeric))


def test_lennard_jones_values():
    lj = md.LennardJones(epsilon=2.0, sigma=1.5, cutoff=3.0, shift=False)
    r2 = jnp.array([1.5**2, (2 ** (1 / 6) * 1.5) ** 2])
    np.testing.assert_allclose(lj.pair_energy(r2, None, None), [0.0, -2.0], atol=1e-12)
    shifted = md.LennardJones(cutoff=2.5)
    np.testing.assert_allclose(shifted.pair_energy(jnp.array(2.5**2), None, None), 0.0, atol=1e-14)
    smooth = md.SmoothLennardJones(onset=2.0, cutoff=2.5)
    np.testing.assert_allclose(smooth.pair_energy(jnp.array(2.5**2), None, None), 0.0, atol=1e-14)
    plain = md.LennardJones(cutoff=2.5, shift=False)
    np.testing.assert_allclose(
        smooth.pair_energy(jnp.array(1.9**2), None, None),
        plain.pair_energy(jnp.array(1.9**2), None, None),
    )


def test_energies_add_up_with_a_neural_term():
    positions = cluster()
    box = md.FreeSpace()
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    neural = md.PairPotential(
        Elementwise(eqx.nn.MLP(1, 1, 8, 2, key=jax.random.key(1), dtype=jnp.float64)),
        cutoff=2.5,
    )
    parts = (md.LennardJones(), md.Morse(cutoff=2.5), neural)
    total = parts[0] + parts[1] + parts[2]
    assert isinstance(total, md.SumEnergy) and len(total.terms) == 3
    np.testing.assert_allclose(
        total.energy(positions, nbrs, box), sum(p.energy(positions, nbrs, box) for p in parts)
    )
    np.testing.assert_allclose(
        total.forces(positions, nbrs, box),
        -jax.grad(total.energy)(positions, nbrs, box),
        atol=1e-10,
    )
    # the network's weights are differentiable parameters of the total energy
    grads = eqx.filter_grad(lambda e: e.energy(positions, nbrs, box))(total)
    assert np.any(np.asarray(grads.terms[2].function.mlp.layers[0].weight) != 0)


def test_species_pair_parameters(fcc500):
    positions, box = fcc500
    n = positions.shape[0]
    species = jnp.arange(n) % 2
    epsilon = jnp.array([[1.0, 0.5], [0.5, 2.0]])
    sigma = jnp.array([[1.0, 1.1], [1.1, 1.2]])
    lj = md.LennardJones(epsilon, sigma, cutoff=2.5, species=species)
    cells = md.neighbor_list(positions, box, cutoff=2.5)
    p = np.asarray(positions)
    d = p[:, None] - p[None]
    d -= np.asarray(box.lengths) * np.round(d / np.asarray(box.lengths))
    r2 = np.sum(d * d, -1)
    np.fill_diagonal(r2, np.inf)
    s = np.asarray(species)
    eps, sig = np.asarray(epsilon)[s[:, None], s[None]], np.asarray(sigma)[s[:, None], s[None]]
    x6 = (sig**2 / r2) ** 3
    c6 = (sig**2 / 2.5**2) ** 3
    phi = np.where(r2 < 6.25, 4 * eps * (x6 * (x6 - 1) - c6 * (c6 - 1)), 0.0)
    np.testing.assert_allclose(lj.energy(positions, cells, box), 0.5 * phi.sum(), rtol=1e-12)
    grad = jax.grad(
        lambda e: md.LennardJones(e, sigma, 2.5, species=species).energy(positions, cells, box)
    )(epsilon)
    assert grad.shape == (2, 2) and np.all(np.isfinite(grad))


def test_species_errors(wrong_type):
    with pytest.raises(ValueError, match="species"):
        md.LennardJones(epsilon=jnp.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        md.LennardJones(epsilon=jnp.ones((2, 2)), species=jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="integer"):
        md.LennardJones(epsilon=jnp.ones((2, 2)), species=jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="square"):
        md.Morse(alpha=jnp.ones((2, 3)), species=jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(M, 2\)"):
        md.HarmonicBonds(jnp.array([0, 1]))
    with pytest.raises(ValueError, match="neighbour list"):
        md.LennardJones().energy(cluster(), None, md.FreeSpace())
    positions = cluster()
    nbrs = md.DenseNeighborList.build(positions, md.FreeSpace(), cutoff=2.5)
    mismatched = md.LennardJones(epsilon=jnp.ones((2, 2)), species=jnp.array([0, 1, 1]))
    with wrong_type("species", ValueError, r"species must have shape \(6,\)"):
        mismatched.energy(positions, nbrs, md.FreeSpace())


def test_virial_pressure_from_box_gradient(fcc500):
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    lj = md.LennardJones(cutoff=2.5)
    pressure = md.pressure(lj, positions, box, nbrs)
    forces = lj.forces(positions, nbrs, box)
    # virial theorem with pair forces: W = sum_{i<j} r_ij . f_ij
    p = np.asarray(positions)
    lengths = np.asarray(box.lengths)
    d = p[:, None] - p[None]
    d -= lengths * np.round(d / lengths)
    r2 = np.sum(d * d, -1)
    np.fill_diagonal(r2, np.inf)
    inv6 = np.where(r2 < 6.25, r2**-3, 0.0)
    virial = 0.5 * np.sum(24 * inv6 * (2 * inv6 - 1))
    np.testing.assert_allclose(pressure, virial / (3 * np.prod(lengths)), rtol=1e-10)
    assert np.abs(np.sum(np.asarray(forces), axis=0)).max() < 1e-9


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda v: md.LennardJones(epsilon=v), "epsilon"),
        (lambda v: md.LennardJones(sigma=v), "sigma"),
        (lambda v: md.SmoothLennardJones(epsilon=v), "epsilon"),
        (lambda v: md.Morse(alpha=v), "alpha"),
        (lambda v: md.Morse(r0=v), "r0"),
        (lambda v: md.SoftSphere(sigma=v), "sigma"),
        (lambda v: md.LennardJones(cutoff=v), "cutoff"),
        (lambda v: md.SmoothLennardJones(onset=v), "onset"),
        (lambda v: md.PairPotential(jnp.exp, cutoff=v), "cutoff"),
        (lambda v: md.HarmonicBonds(jnp.array([[0, 1]]), stiffness=v), "stiffness"),
        (lambda v: md.HarmonicAngles(jnp.array([[0, 1, 2]]), rest_angle=v), "rest_angle"),
    ],
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1.0 + 2.0j, True, "1.0"])
def test_non_finite_parameters_are_rejected_at_construction(factory, name, value, wrong_type):
    """Probe row 56: LennardJones(epsilon=nan) was accepted and init then blamed
    overlapping particles."""
    if _wrong_type_for(factory, value):
        raises = wrong_type(name, hybrax.ConfigurationError, name)
    else:
        raises = pytest.raises(hybrax.ConfigurationError, match=name)
    with raises:
        factory(value)


def _wrong_type_for(factory, value):
    """Whether ``value`` does not fit the annotation of the parameter ``factory`` sets.

    Annotated there: PairPotential's ``cutoff: float`` and the bonded terms' ``ArrayLike``
    parameters (a str is no ArrayLike); the other constructors' parameters are unannotated.
    """
    called = factory.__code__.co_names
    if "PairPotential" in called:
        return not isinstance(value, float)
    if "HarmonicBonds" in called or "HarmonicAngles" in called:
        return isinstance(value, str)
    return False


def test_species_tables_still_work_and_traced_nan_is_caught():
    epsilon = jnp.array([[1.0, 0.5], [0.5, 2.0]])
    lj = md.LennardJones(epsilon=epsilon, species=jnp.array([0, 1, 1, 0]))
    assert lj.epsilon.shape == (2, 2)
    with pytest.raises(hybrax.ConfigurationError, match="epsilon"):
        md.LennardJones(epsilon=epsilon.at[0, 1].set(jnp.nan), species=jnp.array([0, 1]))

    @eqx.filter_jit
    def depth(e):
        return md.LennardJones(epsilon=e).epsilon

    with pytest.raises(eqx.EquinoxRuntimeError, match="epsilon"):
        jax.block_until_ready(depth(jnp.asarray(jnp.nan)))

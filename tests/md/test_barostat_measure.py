"""Which distribution MartynaTobiasKlein samples: the Jacobian of one step (its phase-space
compressibility) against the invariant measure derived for each coupling.

A step maps (positions, velocities, cell, strain rates, chains) to new ones; a
measure-preserving integrator (Tuckerman et al. 2006) has ``ln det J = ln sqrt(g)(before) -
ln sqrt(g)(after)`` exactly, for its metric ``sqrt(g)``. Together with the conserved
extended energy ``H'`` (tests/md/test_barostat_flexible.py) this fixes the sampled
distribution, ``sqrt(g) exp(-H'/kT)``. With ``N_f = 3N`` and one-link chains (``N_f =
3N - 3`` adds ``V^(3N/N_f - 1)``, the share of the conserved zero total momentum):

* ``couple="iso"``: ``sqrt(g) = exp(3N xi + xi_b)``, uniform in the volume: MTK's
  ``dV exp(-PV/kT) Q(N, V)``;
* ``couple="full"`` (lower-triangular cell ``lx, ly, lz, xy, xz, yz``):
  ``sqrt(g) = exp(3N xi + 6 xi_b) / (lx^2 ly)``. The measure ``d^6h / (lx^2 ly)`` is
  homogeneous of degree 3 in the cell, as ``dV``: it splits into ``dV`` times a measure on
  the cell's shape, so whenever ``Q(N, h)`` depends on the volume only (an ideal gas, a fluid
  in the large-N limit) the volume distribution is the isotropic one. MTK's
  rotation-invariant ``d^9h det(h)^(-2)`` reduced to the triangular cell (Jacobian
  ``lx^2 ly``) is ``d^6h / (ly lz^2)``: the same volume marginal, another weight of the
  shapes (by ``(lz / lx)^2``); LAMMPS's ``fix npt tri`` has the same equations as here.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hybrax.md as md

CUTOFF = 1.4


def _system(couple, dof_3n):
    # 8 atoms of a dense-ish LJ gas, displaced off the lattice, in a tilted (or cubic) cell
    positions, box = md.lattice("sc", 2, density=0.3, dtype=jnp.float64)
    n = positions.shape[0]
    side = float(box.lengths[0])
    noise = 0.1 * jax.random.normal(jax.random.key(0), positions.shape, jnp.float64)
    if couple == "full":
        cell = md.TriclinicBox.from_lammps(side, 1.05 * side, 0.95 * side, 0.3, -0.2, 0.25)
        x = cell.wrap(cell.cartesian(positions / box.lengths) + noise)
    else:
        cell = box
        x = box.wrap(positions + noise)
    v = md.maxwell_boltzmann(jax.random.key(1), n, 1.5).astype(jnp.float64)
    stepper = md.MartynaTobiasKlein(
        md.LennardJones(cutoff=CUTOFF),
        cell,
        dt=0.005,
        temperature=1.5,
        pressure=1.0,
        tau=0.5,
        tau_barostat=1.0,
        couple=couple,
        chain_length=1,
        degrees_of_freedom=3 * n if dof_3n else None,
    )
    state = stepper.init(x, v, md.neighbor_list(x, cell, CUTOFF))
    # moving cell and chains: strain rates of 0.2-0.4 / tau, chain velocities of 0.6 / tau
    rates = jnp.asarray([0.4, -0.3, 0.2, 0.3, -0.25, 0.35])[: state.barostat.velocities.shape[0]]
    state = eqx.tree_at(
        lambda s: (s.barostat.velocities, s.thermostat.velocities, s.barostat.chain.velocities),
        state,
        (rates, jnp.asarray([0.7]), jnp.asarray([-0.6])),
    )
    return stepper, state


def _flat(state, full):
    b = state.barostat
    cell = (b.lengths, b.tilts) if full else (b.lengths,)
    chains = (state.thermostat.positions, state.thermostat.velocities, b.chain.positions)
    parts = (state.positions.ravel(), state.velocities.ravel(), *cell, b.velocities, *chains)
    return jnp.concatenate((*parts, b.chain.velocities))


def _jacobian_and_change(stepper, state):
    """``ln |det J|`` of one step in the variables of `_flat` (forces, virial and list
    recomputed from positions and cell), and the old and new flat states."""
    full = stepper.couple == "full"
    n = state.positions.shape[0]
    axes = state.barostat.velocities.shape[0]
    sizes = [3 * n, 3 * n, 3] + ([3] if full else []) + [axes, 1, 1, 1, 1]
    cut = np.cumsum(sizes)[:-1]

    def step(z):
        x, v, *cell, vg, xi, vxi, xi_b, vxi_b = jnp.split(z, cut)
        lengths = cell[0]
        if full:  # rows (lx, 0, 0), (xy, ly, 0), (xz, yz, lz); tilts (xy, xz, yz)
            (lx, ly, lz), (xy, xz, yz) = lengths, cell[1]
            zero = jnp.zeros_like(lx)
            box = md.TriclinicBox(
                jnp.stack([jnp.stack(r) for r in ((lx, zero, zero), (xy, ly, zero), (xz, yz, lz))])
            )
        else:
            box = md.PeriodicBox(lengths)
        x = x.reshape(n, 3)
        here = eqx.tree_at(lambda s: s.box, stepper, box)
        s = here.init(x, v.reshape(n, 3), state.neighbors.update(x, box))
        s = eqx.tree_at(
            lambda s: (s.barostat.velocities, s.thermostat, s.barostat.chain),
            s,
            (vg, type(s.thermostat)(xi, vxi), type(s.thermostat)(xi_b, vxi_b)),
        )
        return _flat(stepper.step(s), full)

    z0 = _flat(state, full)
    z1, jacobian = jax.jit(lambda z: (step(z), jax.jacfwd(step)(z)))(z0)
    sign, logdet = np.linalg.slogdet(np.asarray(jacobian))
    assert sign > 0
    return logdet, np.asarray(z0), np.asarray(z1), cut


def test_flexible_cell_step_preserves_the_measure_d6h_over_lx2_ly():
    stepper, state = _system("full", dof_3n=False)  # N_f = 3N - 3, the default
    n = state.positions.shape[0]
    dof = 3 * n - 3
    logdet, z0, z1, cut = _jacobian_and_change(stepper, state)
    lengths = slice(cut[1], cut[2])
    dl = np.log(z1[lengths] / z0[lengths])  # d ln lx, d ln ly, d ln lz over the step
    dxi, dxi_b = z1[cut[4]] - z0[cut[4]], z1[cut[6]] - z0[cut[6]]
    chains = -3 * n * dxi - 6 * dxi_b
    # (3N / N_f - 1) d ln V: the COM's share when N_f = 3N - 3 (zero total momentum)
    com = -(3 * n / dof - 1) * np.sum(dl)
    predicted = 2 * dl[0] + dl[1] + com + chains  # sqrt(g) = 1 / (lx^2 ly)
    # measured difference 2e-14; a measure one power of V off would be d ln V = 1.5e-3 away,
    # MTK's rotation-reduced 1 / (ly lz^2) 2e-3 away
    assert abs(logdet - predicted) < 1e-10
    assert abs(np.sum(dl)) > 1e-3 and abs(2 * dl[0] - 2 * dl[2]) > 1e-3  # sensitive


def test_isotropic_step_preserves_the_volume_measure():
    stepper, state = _system("iso", dof_3n=True)
    n = state.positions.shape[0]
    logdet, z0, z1, cut = _jacobian_and_change(stepper, state)
    dlnv = np.sum(np.log(z1[cut[1] : cut[2]] / z0[cut[1] : cut[2]]))
    dxi, dxi_b = z1[cut[3]] - z0[cut[3]], z1[cut[5]] - z0[cut[5]]
    assert abs(dlnv) > 1e-3
    assert abs(logdet - (-3 * n * dxi - dxi_b)) < 1e-10  # uniform in V (MTK)

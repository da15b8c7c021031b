"""Differentiable molecular dynamics: boxes, neighbour lists, potentials (analytic and
neural), integrators, training data for potentials.

Everything is an `equinox.Module`: the box, the neighbour list, the energies (which add up:
``LennardJones() + HarmonicBonds(...)``), the integrators (hybrax Steppers over an
`MDState`). Units are reduced Lennard-Jones units (sigma, epsilon, m, tau).

>>> import jax, hybrax.md as md
>>> positions, box = md.lattice("fcc", 6, density=0.8442)
>>> nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
>>> stepper = md.VelocityVerlet(md.LennardJones(cutoff=2.5), box, dt=0.005)
>>> v = md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], temperature=3.0)
>>> final, pe = md.simulate(stepper, stepper.init(positions, v, nbrs), 100, chunk_size=100,
...     save_every=10, observe=lambda s: s.potential_energy, progress=False)
"""

from ._ase import AtomicSystem, from_ase, to_ase
from ._ase_calculator import ase_calculator
from ._barostats import MartynaTobiasKlein, TriclinicBarostatState
from ._batch import SystemBatch
from ._batch_forces import batch_energy_and_forces, batch_neighbor_list, batch_stress
from ._batch_simulate import simulate_batch
from ._batch_training import BatchEnergyForceLoss, LabelledSystems, label_systems
from ._bonded import HarmonicAngles, HarmonicBonds
from ._cell_list import CellNeighborList
from ._dense_list import DenseNeighborList
from ._eam import EmbeddedAtom
from ._energy import AbstractEnergy, SumEnergy
from ._equivariant import EquivariantPotential
from ._ewald import (
    METAL_COULOMB_CONSTANT,
    AbstractEwald,
    EwaldCoulomb,
    ewald_parameters,
)
from ._integrators import AbstractMDStepper, VelocityVerlet
from ._io import read_extxyz, write_extxyz
from ._lattice import lattice, maxwell_boltzmann, random_packing
from ._manybody import AbstractManyBodyEnergy
from ._masked_list import MaskedNeighborList
from ._minimize import FIRE, FIREState, MinimizeResult, minimize
from ._neighbor_list import neighbor_list
from ._neighbors import AbstractNeighborList
from ._neural import NeuralPairPotential, SchNetPotential
from ._neural_training import EnergyForceLoss, LabelledFrames, label_frames
from ._observables import (
    kinetic_energy,
    mean_squared_displacement,
    momentum,
    pressure,
    radial_distribution,
    temperature,
    total_energy,
    unwrap,
)
from ._pair import (
    AbstractPairEnergy,
    LennardJones,
    Morse,
    PairPotential,
    SmoothLennardJones,
    SoftSphere,
)
from ._pme import ParticleMeshEwald
from ._simulate import NeighborListOverflowWarning, simulate
from ._space import AbstractBox, FreeSpace, PeriodicBox
from ._state import BarostatState, MDState, NoseHooverChainState
from ._stillinger_weber import StillingerWeber
from ._stress import stress
from ._tersoff import Tersoff
from ._thermostats import BrownianDynamics, LangevinBAOAB, NoseHooverChain
from ._triclinic import TriclinicBox
from ._units import Units

__all__ = [
    "FIRE",
    "METAL_COULOMB_CONSTANT",
    "AbstractBox",
    "AbstractEnergy",
    "AbstractEwald",
    "AbstractMDStepper",
    "AbstractManyBodyEnergy",
    "AbstractNeighborList",
    "AbstractPairEnergy",
    "AtomicSystem",
    "BarostatState",
    "BatchEnergyForceLoss",
    "BrownianDynamics",
    "CellNeighborList",
    "DenseNeighborList",
    "EmbeddedAtom",
    "EnergyForceLoss",
    "EquivariantPotential",
    "EwaldCoulomb",
    "FIREState",
    "FreeSpace",
    "HarmonicAngles",
    "HarmonicBonds",
    "LabelledFrames",
    "LabelledSystems",
    "LangevinBAOAB",
    "LennardJones",
    "MDState",
    "MartynaTobiasKlein",
    "MaskedNeighborList",
    "MinimizeResult",
    "Morse",
    "NeighborListOverflowWarning",
    "NeuralPairPotential",
    "NoseHooverChain",
    "NoseHooverChainState",
    "PairPotential",
    "ParticleMeshEwald",
    "PeriodicBox",
    "SchNetPotential",
    "SmoothLennardJones",
    "SoftSphere",
    "StillingerWeber",
    "SumEnergy",
    "SystemBatch",
    "Tersoff",
    "TriclinicBarostatState",
    "TriclinicBox",
    "Units",
    "VelocityVerlet",
    "ase_calculator",
    "batch_energy_and_forces",
    "batch_neighbor_list",
    "batch_stress",
    "ewald_parameters",
    "from_ase",
    "kinetic_energy",
    "label_frames",
    "label_systems",
    "lattice",
    "maxwell_boltzmann",
    "mean_squared_displacement",
    "minimize",
    "momentum",
    "neighbor_list",
    "pressure",
    "radial_distribution",
    "random_packing",
    "read_extxyz",
    "simulate",
    "simulate_batch",
    "stress",
    "temperature",
    "to_ase",
    "total_energy",
    "unwrap",
    "write_extxyz",
]

"""Workflow ``lj-neural-potential``: a neural pair potential learned from Lennard-Jones MD.

Reference: the Lennard-Jones liquid (truncated and shifted at 2.5 sigma) at the LAMMPS
``in.lj`` density 0.8442 and temperature 1.2 (reduced units). An fcc crystal (500 atoms at
full size, 108 in ``--quick``) is melted and equilibrated with Langevin BAOAB (dt 0.005,
friction 1), then frames are taken every ``frame_spacing`` steps (1 tau at full size) along
a production run; the last 20 % of the frames are held out. Each frame is labelled with the
reference energy and forces.

Model: `hybrax.md.NeuralPairPotential` (16 Bessel functions, polynomial envelope, an MLP of
two hidden layers of 32 silu units, evaluated through a 1,024-knot cubic Hermite table of
the network), trained with `hybrax.hybrid.fit` on the energy-and-force loss
`hybrax.md.EnergyForceLoss` (forces are ``-grad`` of the network energy). With
``message_passing=True`` (the full run) a `hybrax.md.SchNetPotential` is trained and
evaluated the same way on a 108-atom system at the same state point (its pair sums cost
too much at 500 atoms on a CPU; see its docstring).

Metrics (``OUT/metrics.json``)::

    {"force_rmse": {model: rmse},            # held-out frames, per force component
     "nve_drift": {"reference": d, model: d},
     "rdf_l2": {"reference": l2, model: l2}}

``force_rmse`` is in epsilon / sigma (compare with the reference force scale, the RMS force
component, in ``run_info.json``). ``nve_drift`` is the relative drift of the total energy over
``nve_steps`` velocity-Verlet steps (dt 0.005) from the same equilibrated state: the change
of a straight-line fit to ``E(t)`` over the run divided by ``|E(0)|``; ``"reference"`` is
Lennard-Jones itself in the same setting. ``rdf_l2`` is the L2 distance
``sqrt(int_0^r_max (g(r) - g_ref(r))^2 dr)`` (sigma^(1/2)) between the g(r) of a Langevin run
with the model and the reference g(r) of the production frames; ``"reference"`` is an
independent Lennard-Jones run of the same length (the sampling noise of the metric).
``OUT/run_info.json`` holds settings, wall times, data statistics and training histories;
``force_parity.png``, ``rdf.png``, ``pair_potential.png`` and ``nve_energy.png`` are the
plots.

Layout: ``settings.py`` (`LJSettings`, `FULL`, `QUICK`), ``data.py`` (reference MD),
``model.py``, ``train.py``, ``evaluate.py``, ``report.py``, ``workflow.py`` (`run`). The
names below are the public surface.
"""

from .data import ReferenceData, make_reference_data, reference_energy
from .evaluate import (
    force_rmse,
    nve_drift,
    nve_fluctuation,
    predict,
    rdf_l2,
    rdf_of_frames,
    rdf_of_run,
)
from .model import new_pair_potential, new_schnet_potential
from .report import comparison_table
from .settings import FULL, QUICK, LJSettings
from .train import train_potential
from .workflow import run

__all__ = [
    "FULL",
    "QUICK",
    "LJSettings",
    "ReferenceData",
    "comparison_table",
    "force_rmse",
    "make_reference_data",
    "new_pair_potential",
    "new_schnet_potential",
    "nve_drift",
    "nve_fluctuation",
    "predict",
    "rdf_l2",
    "rdf_of_frames",
    "rdf_of_run",
    "reference_energy",
    "run",
    "train_potential",
]

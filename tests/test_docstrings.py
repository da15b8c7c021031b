"""Every public docstring's examples run, with :mod:`doctest`, as they are written.

The objects are those each package exports in ``__all__`` (classes with their methods and
properties, functions, and the package docstrings); an object exported by several packages runs
once. The tests run with x64 on and strict dtype promotion (``conftest.py``), so the examples
are written to pass there. Output is compared with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``
(write ``dtype=float...`` where the dtype is JAX's default float). Examples that write files
use ``tempfile.mkdtemp()``, which here points into pytest's temporary directory.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import tempfile
import types

import pytest

PACKAGES = (
    "hybrax",
    "hybrax.core",
    "hybrax.errors",
    "hybrax.grids",
    "hybrax.fluids",
    "hybrax.climate",
    "hybrax.md",
    "hybrax.nn",
    "hybrax.hybrid",
    "hybrax.parallel",
    "hybrax.io",
    "hybrax.experiments",
    "hybrax.experiments.lorenz96",
    "hybrax.experiments.lorenz96_closure",
    "hybrax.experiments.kolmogorov_correction",
    "hybrax.experiments.fv_learned_interpolation",
    "hybrax.experiments.lj_neural_potential",
    "hybrax.experiments.qg_parameterization",
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Examples that cost more than about 2 s of CPU each (measured on the 2-core CPU, x64 on;
#: mostly XLA compilation): they run with ``--runslow`` only, so that the default run, the
#: other 123 examples, costs under a minute of CPU (53 s measured; these 52: 251 s).
SLOW: dict[str, float] = {
    "hybrax.fluids._fv_diagnostics.pressure_difference": 3.2,  # from its wall time
    "hybrax.nn._unet.PeriodicUNet": 16.58,
    "hybrax.md": 13.75,
    "hybrax.parallel._spatial.distribute": 12.42,
    "hybrax.hybrid._curriculum.Curriculum": 11.49,
    "hybrax.fluids._fv_diagnostics.drag_lift_coefficients": 11.01,
    "hybrax.nn._fno.FNO": 9.1,
    "hybrax.md._neural.SchNetPotential": 9.05,
    "hybrax.md._observables.pressure": 8.17,
    "hybrax.climate._qg_metrics.qg_distances": 7.74,
    "hybrax.fluids._navier_stokes3d.NavierStokes3D": 6.77,
    "hybrax.climate._ebm.BudykoSellers": 6.64,
    "hybrax.climate._ebm_equilibrium.hysteresis_sweep": 6.4,
    "hybrax.md._simulate.simulate": 5.79,
    "hybrax.md._batch_simulate.simulate_batch": 16.5,  # NVE, Langevin and NPT batches
    "hybrax.md._equivariant.EquivariantPotential": 4.8,  # e3nn-jax import and model build
    "hybrax.core._imex.CrankNicolsonRK4": 5.6,
    "hybrax.fluids._incompressible.IncompressibleNavierStokes": 5.47,
    "hybrax.parallel._fft3d.SlabFFT3D": 5.29,
    "hybrax.climate._qg.TwoLayerQG": 4.87,
    "hybrax.md._neural.NeuralPairPotential": 4.69,
    "hybrax.hybrid._losses.PushforwardLoss": 4.65,
    "hybrax.nn._cnn.PeriodicResNet": 4.29,
    "hybrax.io._fields.to_dataset": 4.22,
    "hybrax.hybrid._losses.OneStepLoss": 3.84,
    "hybrax.md._integrators.VelocityVerlet": 3.84,
    "hybrax.core._diffrax_stepper.DiffraxStepper": 3.83,
    "hybrax.core._precision.MixedPrecision": 3.8,
    "hybrax.hybrid._train.fit": 3.58,
    "hybrax.climate._ebm.EnergyBalance0D": 3.46,
    "hybrax.climate._lorenz.Lorenz96": 3.44,
    "hybrax.nn._fno.SpectralConv": 3.24,
    "hybrax.fluids._navier_stokes.NavierStokes2D": 3.23,
    "hybrax.climate._qg_closures.Smagorinsky": 3.21,
    "hybrax.climate._qg_filtering.SharpSpectralCoarsener": 3.16,
    "hybrax.fluids._navier_stokes.NavierStokes2D.kolmogorov": 3.16,
    "hybrax.nn._cnn.PeriodicCNN": 2.77,
    "hybrax.hybrid._wrappers.SemilinearClosure": 2.73,
    "hybrax.fluids._fv_diagnostics.stream_function": 2.72,
    "hybrax.parallel._fft.SlabFFT": 2.69,
    "hybrax.climate._shallow_water.ShallowWater": 2.67,
    "hybrax.climate._lorenz.TwoScaleLorenz96": 2.59,
    "hybrax.parallel._mesh.sharded_rollout": 2.54,
    "hybrax.md._neural_training.EnergyForceLoss": 2.53,
    "hybrax.fluids._fv_diagnostics.pressure_at": 2.31,
    "hybrax.core._filtered.Filtered": 2.3,
    "hybrax.md._lattice.random_packing": 2.27,
    "hybrax.climate._qg.TwoLayerQG.courant_number": 2.24,
    "hybrax.hybrid._data.generate_trajectories": 2.22,
    "hybrax.climate._ebm_equilibrium.stable_steady_state": 2.18,
    "hybrax.io._fields.from_dataset": 2.18,
    "hybrax.nn._cnn.PeriodicConv": 2.16,
    "hybrax.fluids._fv_diagnostics.divergence_norm": 2.14,
    "hybrax.fluids._shedding.dominant_frequency": 2.12,
    "hybrax.climate._qg_closures.BackscatterBiharmonic": 2.04,
}


def _public_doctests() -> dict[str, doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests: dict[str, doctest.DocTest] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for test in finder.find(package, package_name, module=package):
            if test.name == package_name:  # the package docstring itself, not its members
                tests.setdefault(test.name, test)
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, types.ModuleType):
                continue
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # constants: their docstring is their type's
            module = inspect.getmodule(obj)
            if module is None or not module.__name__.startswith("hybrax"):
                continue
            qualname = f"{module.__name__}.{obj.__qualname__}"
            for test in finder.find(obj, qualname, module=module):
                if test.examples:
                    tests.setdefault(test.name, test)
    return dict(sorted(tests.items()))


DOCTESTS = _public_doctests()


def test_there_are_examples():
    assert len(DOCTESTS) > 100
    assert not set(SLOW) - set(DOCTESTS), "SLOW names an example that no longer exists"


@pytest.mark.parametrize("name", list(DOCTESTS))
def test_docstring_example(name, full_size, tmp_path, monkeypatch):
    if name in SLOW and not full_size:
        pytest.skip(f"{SLOW[name]} s of CPU: runs with --runslow")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # tempfile.mkdtemp() in examples
    test = DOCTESTS[name]
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    output: list[str] = []
    result = runner.run(test, out=output.append, clear_globs=False)
    assert result.failed == 0, "".join(output)

"""The lj-neural-potential workflow: its helpers and the --quick run's claims."""

import json

import jax
import numpy as np
import pytest

import hybrax
from hybrax.experiments.lj_neural_potential import (
    QUICK,
    comparison_table,
    new_pair_potential,
    nve_fluctuation,
    rdf_l2,
    run,
)


def test_settings_are_checked_up_front():
    with pytest.raises(hybrax.ConfigurationError, match="nve_steps must be a multiple of 10"):
        QUICK.replace(nve_steps=1005)
    with pytest.raises(hybrax.ConfigurationError, match="rdf_steps must be a positive multiple"):
        QUICK.replace(rdf_steps=30)
    with pytest.raises(hybrax.ConfigurationError, match="held_out_fraction must be between"):
        QUICK.replace(held_out_fraction=1.0)
    with pytest.raises(hybrax.ConfigurationError, match="temperature must be positive"):
        QUICK.replace(temperature=-1.0)
    with pytest.raises(hybrax.ConfigurationError, match="core_radius must be zero or positive"):
        QUICK.replace(core_radius=-0.9)
    with pytest.raises(hybrax.ConfigurationError, match="core_radius must be below the cutoff"):
        QUICK.replace(core_radius=3.0)


def test_pair_model_has_the_repulsive_prior():
    """The learned pair potential carries the settings' repulsive core (0 turns it off)."""
    assert QUICK.core_radius == 0.9
    assert new_pair_potential(jax.random.key(0), QUICK).core_radius == 0.9
    assert new_pair_potential(jax.random.key(0), QUICK.replace(core_radius=0.0)).core_radius is None


def test_rdf_l2_and_nve_fluctuation():
    r = np.linspace(0.05, 2.45, 25)  # bin width 0.1
    g = 1.0 + np.sin(3 * r)
    assert rdf_l2(r, g, g) == 0.0
    # a constant offset c over 25 bins of width 0.1: sqrt(c^2 * 2.5)
    assert rdf_l2(r, g, g + 0.2) == pytest.approx(0.2 * np.sqrt(2.5))
    assert rdf_l2(r, g, None) is None
    trace = np.array([-300.0, -300.1, -299.9, -300.1, -299.9])
    assert nve_fluctuation(trace) == pytest.approx(0.1 / 300.0)
    assert nve_fluctuation(np.array([-1.0, np.nan])) is None


def test_quick_run_claims(tmp_path):
    """At CI size (108 atoms, 32 training frames): held-out forces within 2 % of the force
    scale, the learned potential's g(r) as close to the reference as an independent
    Lennard-Jones run is (up to a factor 3), and its NVE energy drift bounded by the energy
    fluctuation scale of the reference run."""
    metrics = run(QUICK, tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert set(metrics) == {"force_rmse", "nve_drift", "rdf_l2"}
    assert set(metrics["force_rmse"]) == {"neural_pair"}
    assert set(metrics["nve_drift"]) == {"reference", "neural_pair"}
    assert set(metrics["rdf_l2"]) == {"reference", "neural_pair"}
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["quick"] is True and info["num_atoms"] == QUICK.num_atoms
    assert info["num_train_frames"] + info["num_held_out_frames"] == QUICK.num_frames

    scale = info["force_scale"]
    assert 10.0 < scale < 40.0  # RMS LJ force component at rho 0.8442, T 1.2
    assert metrics["force_rmse"]["neural_pair"] < 0.02 * scale
    assert info["energy_rmse_per_atom"]["neural_pair"] < 0.02  # epsilon per atom

    noise = metrics["rdf_l2"]["reference"]
    assert 0.0 < noise < 0.15
    assert metrics["rdf_l2"]["neural_pair"] < 3.0 * noise

    fluctuation = info["nve_fluctuation"]["reference"]
    assert 0.0 < fluctuation < 1e-3
    assert info["nve_fluctuation"]["neural_pair"] < 2.0 * fluctuation
    assert abs(metrics["nve_drift"]["neural_pair"]) < 5.0 * fluctuation

    for name in ("force_parity.png", "rdf.png", "pair_potential.png", "nve_energy.png"):
        assert (tmp_path / name).stat().st_size > 0
    table = comparison_table(metrics, info)
    assert "neural_pair" in table and "reference" in table

"""The lorenz96-closure workflow: its pieces and the --quick run's claimed ordering."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.experiments.lorenz96_closure import (
    MODEL_NAMES,
    QUICK,
    LocalClosureNet,
    fit_polynomial,
    hellinger_distance,
    run,
)


def test_fit_polynomial_recovers_a_cubic():
    x = jnp.asarray(np.random.default_rng(0).uniform(-10, 15, size=(50, 8)))
    u = 0.3 - 1.2 * x + 0.01 * x**2 - 0.002 * x**3
    poly = fit_polynomial(x, u)
    np.testing.assert_allclose(poly.coefficients, [0.3, -1.2, 0.01, -0.002], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(poly(x[0]), u[0], rtol=1e-10)
    with pytest.raises(hybrax.ConfigurationError, match="more than 3 samples"):
        fit_polynomial(x[0, :2], u[0, :2])


def test_hellinger_distance():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(20000)
    bins = np.linspace(-5, 5, 41)
    assert hellinger_distance(a, a, bins) == pytest.approx(0.0, abs=1e-7)
    assert hellinger_distance(a, a + 20.0, bins) == pytest.approx(1.0)
    assert 0.0 < hellinger_distance(a, 1.5 * a, bins) < 1.0


def test_local_closure_net_is_local_and_shared():
    x = jnp.asarray(np.random.default_rng(2).standard_normal((10, 8)))
    net = LocalClosureNet.build(x, -x, QUICK, jax.random.key(0, impl="rbg"))
    state = x[0]
    out = net(state)
    assert out.shape == (8,)
    # shared across sites: rotating the ring rotates the output
    np.testing.assert_allclose(net(jnp.roll(state, 3)), jnp.roll(out, 3), rtol=1e-12)
    # local: site 0 depends on sites -2..2 only
    jac = jax.jacobian(net)(state)[0]
    assert set(np.nonzero(np.asarray(jac))[0]) == {6, 7, 0, 1, 2}


def test_settings_are_checked_up_front():
    with pytest.raises(hybrax.ConfigurationError, match="coarse_dt must be a whole multiple"):
        QUICK.replace(coarse_dt=0.0075)
    with pytest.raises(hybrax.ConfigurationError, match="online_unroll must be shorter"):
        QUICK.replace(online_unroll=5000)
    with pytest.raises(hybrax.ConfigurationError, match="num_forecasts must be at most the 120"):
        QUICK.replace(num_forecasts=500)
    with pytest.raises(hybrax.ConfigurationError, match="leads must be positive"):
        QUICK.replace(leads=())


def test_quick_run_orders_the_closures(tmp_path):
    """At CI size: every closure beats none on both metrics, and the online-trained net
    beats the cubic polynomial (Wilks 2005) on forecast error. (The full-size run also puts
    it ahead on the PDF; at CI size the Hellinger distances of the closures are within
    about the sampling noise recorded in run_info.json, so that is not asserted here.)"""
    metrics = run(QUICK, tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert set(metrics) == {"forecast_rmse", "pdf_hellinger"}
    assert set(metrics["forecast_rmse"]) == set(MODEL_NAMES)
    assert set(metrics["pdf_hellinger"]) == set(MODEL_NAMES)
    rmse, pdf = metrics["forecast_rmse"], metrics["pdf_hellinger"]
    for name in MODEL_NAMES:
        assert set(rmse[name]) == {"0.5", "1.0"}
    for name in ("polynomial", "neural_offline", "neural_online"):
        for lead in ("0.5", "1.0"):
            assert rmse[name][lead] < rmse["no_closure"][lead]
        assert pdf[name] < pdf["no_closure"]
    for lead in ("0.5", "1.0"):
        assert rmse["neural_online"][lead] < rmse["polynomial"][lead]
    for name in ("forecast_rmse.png", "pdf.png", "run_info.json"):
        assert (tmp_path / name).stat().st_size > 0
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["quick"] is True and info["online_history"]
    assert 0 < info["pdf_hellinger_truth_vs_truth"] < pdf["no_closure"]

"""The ``hybrax`` command: list, info, run (quick), bad input."""

import json

import pytest

from hybrax import cli


def test_list_shows_the_lorenz96_workflow(capsys):
    assert cli.main(["list"]) == 0
    assert "lorenz96" in capsys.readouterr().out


def test_info_reports_devices_and_precision(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jax" in out and "devices" in out and "x64_enabled" in out


def test_run_lorenz96_writes_plot_and_diagnostics(tmp_path, capsys):
    assert cli.main(["run", "lorenz96", "--steps", "2000", "--out", str(tmp_path)]) == 0
    diagnostics = json.loads((tmp_path / "diagnostics.json").read_text())
    assert (tmp_path / "hovmoller.png").stat().st_size > 10_000
    # 20 time units are enough for rough statistics and a clearly positive exponent.
    assert 1.5 < diagnostics["mean"] < 3.2
    assert 3.0 < diagnostics["std"] < 4.2
    assert 1.0 < diagnostics["lyapunov_exponents"][0] < 2.4
    assert diagnostics["integrator"]["steps"] == 2000


def test_unknown_workflow_and_bad_steps(capsys):
    assert cli.main(["run", "no-such-flow"]) == 2
    assert "available:" in capsys.readouterr().err
    assert cli.main(["run", "lorenz96", "--steps", "0"]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err


def test_run_requires_a_name():
    with pytest.raises(SystemExit):
        cli.main(["run"])

"""The ``hybrax`` command: list, info, settings, run (small), and bad input (probe rows 92-95):
every bad input is one line on stderr and exit status 2, never a traceback, never a lost file."""

import json

import pytest

from hybrax import cli


def test_list_shows_the_workflows(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "lorenz96",
        "lorenz96-closure",
        "kolmogorov-correction",
        "fv-learned-interpolation",
        "lj-neural-potential",
        "qg-parameterization",
    ):
        assert name in out


def test_info_reports_versions_devices_and_precision(capsys):
    from importlib import metadata

    assert cli.main(["info"]) == 0
    lines = dict(
        line.strip().split(": ", 1) for line in capsys.readouterr().out.strip().splitlines()
    )
    assert "devices" in lines and lines["x64_enabled"] == "True"
    for name in ("jax", "jaxlib", "equinox", "flax", "optax", "orbax-checkpoint", "diffrax"):
        assert lines[name] == metadata.version(name)  # the full version, as installed
    for name in ("lineax", "optimistix", "hybrax"):
        assert lines[name] == metadata.version(name)


def test_version(capsys):
    from importlib import metadata

    import hybrax

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"hybrax {metadata.version('hybrax')}"
    assert hybrax.__version__ == metadata.version("hybrax")


def test_settings_lists_names_types_and_values(capsys):
    assert cli.main(["settings", "lorenz96", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "steps" in out and "5000" in out and "int" in out


def test_run_lorenz96_writes_plot_metrics_and_info(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "lorenz96", "--set", "steps=2000", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(capsys.readouterr().out) == metrics
    assert (out / "hovmoller.png").stat().st_size > 10_000
    # 20 time units are enough for rough statistics and a clearly positive exponent.
    assert 1.5 < metrics["mean"] < 3.2
    assert 3.0 < metrics["std"] < 4.2
    assert 1.0 < metrics["lyapunov_exponents"][0] < 2.4
    info = json.loads((out / "run_info.json").read_text())
    assert info["integrator"]["steps"] == 2000 and info["preset"] == "custom"
    # the same settings may write into their own folder again; other settings may not
    assert cli.main(["run", "lorenz96", "--set", "steps=10", "--out", str(out)]) == 2
    assert "other settings (steps: 2000 -> 10)" in capsys.readouterr().err


def test_unknown_workflow_and_removed_steps_option(capsys):
    assert cli.main(["run", "no-such-flow"]) == 2
    assert "available:" in capsys.readouterr().err
    assert cli.main(["run", "lorenz96", "--steps", "100"]) == 2
    err = capsys.readouterr().err
    assert "--steps was removed" in err and "--set" in err and "spin_up_steps" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("steps=1", "steps must be at least reorthonormalize_every=10"),  # probe row 94
        ("steps=7", "steps must be at least reorthonormalize_every=10"),
        ("steps=abc", "cannot read 'abc' as setting steps"),
        ("stepz=3", "unknown setting 'stepz'; valid settings: num_variables"),
        ("dt=-0.01", "dt must be positive"),
        ("dtype=float16", "dtype must be 'float32' or 'float64'"),
        ("steps", "--set takes KEY=VALUE"),
    ],
)
def test_bad_settings_fail_before_any_work(setting, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "lorenz96", "--set", setting, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_out_is_one_line_and_status_2(tmp_path, capsys):
    """Probe row 93: --out under /proc, an existing file, or below a file."""
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep")
    for out in ("/proc/hybrax-out", str(a_file), str(a_file / "sub")):
        assert cli.main(["run", "lorenz96", "--quick", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hybrax: out: ") and len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "keep"


def test_kolmogorov_never_deletes_a_users_checkpoint(tmp_path, capsys):
    """Probe row 95: `--out DIR` with DIR/checkpoints/my_model.ckpt deleted the file."""
    user = tmp_path / "checkpoints" / "my_model.ckpt"
    user.parent.mkdir()
    user.write_bytes(b"weights")
    assert cli.main(["run", "kolmogorov-correction", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "hybrax did not write" in err and "checkpoints" in err
    assert user.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def test_run_requires_a_name():
    with pytest.raises(SystemExit):
        cli.main(["run"])


def test_float64_settings_need_64_bit_mode(tmp_path, capsys):
    import jax

    enabled = jax.config.jax_enable_x64  # on in the test suite: switch it off here
    jax.config.update("jax_enable_x64", False)
    try:
        status = cli.main(["run", "lorenz96", "--set", "dtype=float64", "--out", str(tmp_path)])
    finally:
        jax.config.update("jax_enable_x64", enabled)
    assert status == 2
    assert "needs JAX's 64-bit mode: run with --float64" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

"""The workflow scaffold: settings from text, run folders hybrax owns (probe rows 93-95)."""

import dataclasses
import json
import os
import pathlib

import pytest

import hybrax
from hybrax.experiments import WorkflowSettings, get_workflow, list_workflows
from hybrax.experiments._workflow import MARKER, Run, RunFolder, read_run


@dataclasses.dataclass(frozen=True)
class Demo(WorkflowSettings):
    steps: int = 100
    dt: float = 0.01
    stages: tuple[tuple[int, int], ...] = ((4, 10), (8, 20))
    leads: tuple[float, ...] = (0.5, 1.0)
    flag: bool = True
    dtype: str | None = None

    def validate(self):
        self.require_positive("steps", "dt")


def test_settings_from_text_are_typed():
    s = Demo().with_overrides(
        {"steps": "20", "dt": "1e-3", "stages": "((2, 5),)", "leads": "(1, 2.5)", "flag": "no"}
    )
    assert s == Demo(20, 0.001, ((2, 5),), (1.0, 2.5), False, None)
    assert isinstance(s.leads[0], float)  # an int given for a float is stored as a float
    assert Demo().with_overrides({"dtype": "float64"}).dtype == "float64"
    assert Demo(dtype="float64").with_overrides({"dtype": "none"}).dtype is None
    # lists from JSON come back as tuples (run_info.json round trip)
    back = Demo.from_dict(json.loads(json.dumps(s.as_dict())))
    assert back == s


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"stepz": "3"}, r"unknown setting 'stepz'; valid settings: steps, dt, stages"),
        ({"steps": "1.5"}, "steps must be of type int"),
        ({"steps": "abc"}, "cannot read 'abc' as setting steps"),
        ({"steps": "0"}, "steps must be positive, got 0"),
        ({"dt": "nan"}, "dt must be finite"),
        ({"dt": "inf"}, "dt must be finite"),
        ({"flag": "maybe"}, "setting flag"),
        ({"stages": "((4, 1.5),)"}, "stages must be of type"),
        ({"leads": "0.5"}, "leads must be of type"),
    ],
)
def test_bad_settings_from_text_name_the_setting(overrides, match):
    with pytest.raises(hybrax.ConfigurationError, match=match):
        Demo().with_overrides(overrides)


def test_settings_are_checked_when_made():
    with pytest.raises(hybrax.ConfigurationError, match="steps must be positive"):
        Demo(steps=-1)
    with pytest.raises(hybrax.ConfigurationError, match="steps must be of type int"):
        Demo(steps=True)
    with pytest.raises(hybrax.ConfigurationError, match="unknown setting 'nope'"):
        Demo().replace(nope=1)


@pytest.mark.parametrize("workflow", [w.name for w in list_workflows()])
def test_every_preset_is_valid_and_round_trips(workflow):
    flow = get_workflow(workflow)
    for preset in (flow.full, flow.quick):
        assert type(preset).from_dict(json.loads(json.dumps(preset.as_dict()))) == preset
    name = flow.full.describe()[0][0]
    with pytest.raises(hybrax.ConfigurationError, match=f"valid settings: {name}"):
        flow.settings(overrides={"no_such_setting": "1"})


def test_run_folder_is_created_and_owned(tmp_path):
    out = tmp_path / "a" / "b"
    folder = RunFolder.claim(out, "demo", Demo())
    folder.file("metrics.json").write_text("{}")
    (folder.folder("checkpoints") / "0").mkdir()
    folder.finish()
    marker = json.loads((out / MARKER).read_text())
    assert marker["workflow"] == "demo" and marker["status"] == "finished"
    assert marker["files"] == ["metrics.json", "checkpoints"]
    # the same workflow and settings may reuse (resume) its own folder and rewrite its files
    again = RunFolder.claim(out, "demo", Demo())
    again.file("metrics.json").write_text("{}")
    assert (out / "checkpoints" / "0").is_dir()


def test_a_folder_with_user_files_is_never_touched(tmp_path):
    """Probe row 95: a user's file in the output folder was deleted; now nothing is."""
    user = tmp_path / "checkpoints" / "my_model.ckpt"
    user.parent.mkdir()
    user.write_text("precious")
    with pytest.raises(hybrax.OverwriteError, match="checkpoints"):
        RunFolder.claim(tmp_path, "demo", Demo())
    assert user.read_text() == "precious" and not (tmp_path / MARKER).exists()


def test_run_folder_conflicts_are_refused(tmp_path):
    RunFolder.claim(tmp_path, "demo", Demo()).finish()
    with pytest.raises(hybrax.OverwriteError, match=r"other settings \(steps: 100 -> 7\)"):
        RunFolder.claim(tmp_path, "demo", Demo(steps=7))
    with pytest.raises(hybrax.OverwriteError, match="holds a demo run"):
        RunFolder.claim(tmp_path, "other", Demo())
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(hybrax.OverwriteError, match=r"notes\.txt was not written by hybrax"):
        RunFolder.claim(tmp_path, "demo", Demo())
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "notes.txt").unlink()
    (tmp_path / MARKER).write_text("{not json")
    with pytest.raises(hybrax.OverwriteError, match="damaged"):
        RunFolder.claim(tmp_path, "demo", Demo())


def test_a_run_never_replaces_a_file_it_did_not_write(tmp_path):
    folder = RunFolder.claim(tmp_path / "run", "demo", Demo())
    (tmp_path / "run" / "plot.png").write_text("user's")  # appeared after the claim
    with pytest.raises(hybrax.OverwriteError, match=r"plot\.png exists"):
        folder.file("plot.png")
    with pytest.raises(hybrax.ConfigurationError, match="plain file name"):
        folder.file("../escape.txt")
    assert (tmp_path / "run" / "plot.png").read_text() == "user's"


def test_bad_out_paths_are_configuration_errors(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(hybrax.OverwriteError, match="is a file"):
        RunFolder.claim(a_file, "demo", Demo())
    with pytest.raises(hybrax.ConfigurationError, match="cannot create the run folder"):
        RunFolder.claim(a_file / "sub", "demo", Demo())
    with pytest.raises(hybrax.ConfigurationError, match="cannot create the run folder"):
        RunFolder.claim("/proc/hybrax-probe", "demo", Demo())
    assert a_file.read_text() == "x"


def test_fresh_folders_are_numbered(tmp_path):
    first = RunFolder.fresh(tmp_path, "demo", Demo())
    second = RunFolder.fresh(tmp_path, "demo", Demo())
    assert (first.path.name, second.path.name) == ("demo-001", "demo-002")


def test_run_writes_metrics_and_info_and_read_run_checks_them(tmp_path):
    run = Run("demo", Demo(), tmp_path, progress=False, presets={"full": Demo()})
    with run.phase("work"):
        pass
    run.finish({"x": 1.0}, {"note": "hi"})
    saved = read_run(tmp_path, "demo")
    assert saved["metrics"] == {"x": 1.0}
    info = saved["run_info"]
    assert info["preset"] == "full" and info["note"] == "hi" and "work" in info["wall_time_s"]
    with pytest.raises(hybrax.CheckpointError, match="not a finished other run"):
        read_run(tmp_path, "other")
    with pytest.raises(hybrax.CheckpointError, match=r"missing weights\.eqx"):
        read_run(tmp_path, "demo", needs=("weights.eqx",))


def test_without_out_a_run_gets_a_fresh_folder_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Run("demo", Demo(), progress=False)
    second = Run("demo", Demo(), progress=False)
    assert first.path == tmp_path.joinpath("runs", "demo-001").relative_to(tmp_path)
    assert second.path.name == "demo-002"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_folder_is_a_configuration_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(hybrax.ConfigurationError, match="cannot write to the run folder"):
            RunFolder.claim(locked, "demo", Demo())
    finally:
        locked.chmod(0o700)


def test_a_failing_write_is_a_configuration_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pathlib.Path, "write_text", refuse)
    with pytest.raises(hybrax.ConfigurationError, match="cannot write to the run folder"):
        RunFolder.claim(tmp_path / "run", "demo", Demo())


def test_run_rejects_something_that_is_not_its_settings(tmp_path):
    with pytest.raises(hybrax.ConfigurationError, match="settings must be a Demo"):
        Run("demo", tmp_path, tmp_path, presets={"full": Demo()})
    assert list(tmp_path.iterdir()) == []

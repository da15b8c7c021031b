"""The scaffold every workflow stands on: settings, a run folder it owns, timed phases,
results files and logging.

A workflow's ``run(settings, out)`` opens a `Run`, does its work in ``with
run.phase("name"):`` blocks, writes its files through `Run.file` / `Run.save_figure` /
`Run.folder`, and ends with `Run.finish` (``metrics.json`` and ``run_info.json``).

Ownership (no workflow ever deletes or overwrites a file it did not write): a run writes
only inside its run folder, which holds a marker file, ``.hybrax-run.json``, naming the
workflow, its settings and every file and folder the run created. The folder is either
new, or empty, or one whose marker shows it was written by the same workflow with the same
settings (then the run may resume from it and replace its own files). Anything else raises
`hybrax.OverwriteError` naming the conflicting path. Nothing is ever removed.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hybrax.core import CheckpointError, ConfigurationError, OverwriteError

from . import _plotting
from ._settings import WorkflowSettings

__all__ = ["MARKER", "Run", "RunFolder", "WorkflowSettings", "finite_or_none", "read_run", "thin"]

MARKER = ".hybrax-run.json"
logger = logging.getLogger("hybrax.experiments")


class RunFolder:
    """A folder owned by one workflow run (see the module docstring).

    Use `RunFolder.claim` for a folder the user named and `RunFolder.fresh` for a new
    numbered one; then ask for every path through `file` or `folder`.
    """

    def __init__(self, path: Path, record: dict[str, Any]):
        self.path = path
        self._record = record

    @classmethod
    def claim(cls, out: str | os.PathLike, workflow: str, settings: WorkflowSettings):
        """Own ``out``: created if absent; else it must be empty, or a run folder of
        ``workflow`` with the same settings. `hybrax.OverwriteError` or
        `hybrax.ConfigurationError` (cannot be created or written) otherwise."""
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise OverwriteError(f"out: {path} is a file, not a folder; give a folder path")
        try:
            path.mkdir(parents=True, exist_ok=True)
            entries = sorted(p.name for p in path.iterdir())
        except OSError as error:
            raise ConfigurationError(
                f"out: cannot create the run folder {path} ({error.strerror or error}); "
                "choose a folder you can write to"
            ) from None
        stamp = {"workflow": workflow, "settings": settings.as_dict()}
        if not entries:
            record = {**stamp, "hybrax_run": 1, "created": _now(), "files": []}
        elif MARKER not in entries:
            raise OverwriteError(
                f"out: {path} already holds files hybrax did not write (e.g. "
                f"{path / entries[0]}); a run writes only into a new or empty folder, or into "
                "one written by the same workflow with the same settings. Choose another "
                "--out, or leave it out to get a fresh runs/NAME-NNN folder"
            )
        else:
            record = _read_marker(path)
            _check_same(path, record, stamp)
            owned = set(record.get("files", [])) | {MARKER}
            foreign = [name for name in entries if name not in owned]
            if foreign:
                raise OverwriteError(
                    f"out: {path / foreign[0]} was not written by hybrax; the run folder "
                    f"{path} must hold only the files of its run. Move it, or choose "
                    "another --out"
                )
        folder = cls(path, {**record, "status": "running"})
        folder._save()
        return folder

    @classmethod
    def fresh(cls, parent: str | os.PathLike, workflow: str, settings: WorkflowSettings):
        """A new folder ``parent/<workflow>-NNN`` (the first free number)."""
        parent = Path(parent)
        for number in range(1, 100_000):
            path = parent / f"{workflow}-{number:03d}"
            try:
                path.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                continue
            except OSError as error:
                raise ConfigurationError(
                    f"out: cannot create a run folder under {parent} ({error.strerror}); "
                    "give --out a folder you can write to"
                ) from None
            return cls.claim(path, workflow, settings)
        raise OverwriteError(f"out: no free run folder name left under {parent}")

    def file(self, name: str) -> Path:
        """The path of a file this run writes, recorded in the marker first. An existing
        file there that this run's folder does not own raises `hybrax.OverwriteError`."""
        return self._own(name, folder=False)

    def folder(self, name: str) -> Path:
        """A sub-folder this run owns (created; e.g. for checkpoints it may resume from)."""
        path = self._own(name, folder=True)
        path.mkdir(exist_ok=True)
        return path

    def finish(self) -> None:
        """Mark the run as finished (`read_run` accepts only finished runs)."""
        self._record["status"] = "finished"
        self._record["finished"] = _now()
        self._save()

    def _own(self, name: str, *, folder: bool) -> Path:
        if Path(name).name != name or name in ("", ".", "..", MARKER):
            raise ConfigurationError(f"RunFolder: {name!r} is not a plain file name")
        path = self.path / name
        files = self._record["files"]
        if name not in files:
            if path.exists() or path.is_symlink():
                raise OverwriteError(f"out: {path} exists and was not written by this run")
            files.append(name)
            self._save()
        elif path.exists() and path.is_dir() != folder:
            kind = "folder" if folder else "file"
            raise OverwriteError(f"out: {path} is not the {kind} this run wrote")
        return path

    def _save(self) -> None:
        marker, temporary = self.path / MARKER, self.path / (MARKER + ".tmp")
        try:
            temporary.write_text(json.dumps(self._record, indent=1))
            os.replace(temporary, marker)
        except OSError as error:
            raise ConfigurationError(
                f"out: cannot write to the run folder {self.path} ({error.strerror}); "
                "choose a folder you can write to"
            ) from None


class Run:
    """One workflow run: its folder, settings, timed phases and results files.

    Parameters
    ----------
    workflow
        The workflow's name (``hybrax list``).
    settings
        Its settings.
    out
        The run folder (see `RunFolder.claim`); ``None``: a fresh ``runs/<workflow>-NNN``.
    progress
        Log each phase's wall time (logger ``hybrax.experiments``, level INFO).
    presets
        ``{"quick": QUICK, "full": FULL}``: ``run_info.json`` says which one was used.
    """

    def __init__(self, workflow, settings, out=None, *, progress=True, presets=None):
        if out is None:
            self.run_folder = RunFolder.fresh("runs", workflow, settings)
        else:
            self.run_folder = RunFolder.claim(out, workflow, settings)
        self.path = self.run_folder.path
        self.workflow, self.settings, self.progress = workflow, settings, progress
        matches = [name for name, s in (presets or {}).items() if s == settings]
        self.preset = matches[0] if matches else "custom"
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the enclosed block as phase ``name`` (``run_info.json["wall_time_s"]``)."""
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 2)
        if self.progress:
            logger.info("%s: %s: %.1f s", self.workflow, name, self.timings[name])

    def file(self, name: str) -> Path:
        """Path of an output file in the run folder (see `RunFolder.file`)."""
        return self.run_folder.file(name)

    def folder(self, name: str) -> Path:
        """A sub-folder of the run folder, e.g. for checkpoints (see `RunFolder.folder`)."""
        return self.run_folder.folder(name)

    def save_figure(self, fig, name: str, *, dpi: int = 120) -> Path:
        """Save a matplotlib figure into the run folder (`_plotting.save`)."""
        return _plotting.save(fig, self.file(name), dpi=dpi)

    def finish(self, metrics: dict[str, Any], info: Mapping[str, Any], summary: str = "") -> dict:
        """Write ``metrics.json`` and ``run_info.json`` (settings, preset, ``info``, wall
        times), mark the folder finished, log ``summary``; return ``metrics``."""
        self.timings["total"] = round(time.perf_counter() - self._started, 2)
        run_info = {
            "workflow": self.workflow,
            "settings": self.settings.as_dict(),
            "preset": self.preset,
            "quick": self.preset == "quick",
            **info,
            "wall_time_s": self.timings,
        }
        self.file("metrics.json").write_text(json.dumps(metrics, indent=1))
        self.file("run_info.json").write_text(json.dumps(run_info, indent=1, default=str))
        self.run_folder.finish()
        if summary:
            logger.info("%s", summary)
        logger.info("wrote results to %s/", self.path)
        return metrics


def read_run(path: str | os.PathLike, workflow: str, needs: tuple[str, ...] = ()) -> dict:
    """The marker, metrics and run info of a finished ``workflow`` run in ``path``;
    `hybrax.CheckpointError` naming what is missing otherwise."""
    path = Path(path)
    names = (MARKER, "metrics.json", "run_info.json", *needs)
    missing = [name for name in names if not (path / name).exists()]
    record = {} if MARKER in missing else _read_marker(path)
    if missing or record.get("workflow") != workflow or record.get("status") != "finished":
        raise CheckpointError(
            f"load_run: {path} is not a finished {workflow} run"
            + (f" (missing {', '.join(missing)})" if missing else "")
            + f"; run `hybrax run {workflow} --out {path}` first"
        )
    return {
        "marker": record,
        "metrics": json.loads((path / "metrics.json").read_text()),
        "run_info": json.loads((path / "run_info.json").read_text()),
    }


def thin(entries: list[dict], keep: int = 200) -> list[dict]:
    """Every ``len // keep``-th entry of a long history (for ``run_info.json``)."""
    stride = max(1, len(entries) // keep)
    return entries[::stride]


def finite_or_none(value) -> float | None:
    """``float(value)``, or ``None`` for a missing or non-finite value (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _read_marker(path: Path) -> dict:
    try:
        record = json.loads((path / MARKER).read_text())
        if not isinstance(record, dict) or "workflow" not in record:
            raise ValueError("not a run marker")
    except (OSError, ValueError):
        raise OverwriteError(
            f"out: {path / MARKER} is damaged or not a hybrax run marker; choose another --out"
        ) from None
    return record


def _check_same(path: Path, record: dict, stamp: dict) -> None:
    if record["workflow"] != stamp["workflow"]:
        raise OverwriteError(
            f"out: {path} holds a {record['workflow']} run; choose another --out for "
            f"{stamp['workflow']}"
        )
    old, new = record.get("settings", {}), stamp["settings"]
    keys = old.keys() | new.keys()
    changed = sorted(k for k in keys if _jsonable(old.get(k)) != _jsonable(new.get(k)))
    if changed:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:3])
        raise OverwriteError(
            f"out: {path} holds a {record['workflow']} run with other settings ({shown}); "
            "a run reuses only a folder of the same settings. Choose another --out"
        )


def _jsonable(value):
    return json.loads(json.dumps(value))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

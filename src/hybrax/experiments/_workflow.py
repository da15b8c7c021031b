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
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hybrax.core import CheckpointError, ConfigurationError

from . import _plotting
from ._run_folder import MARKER, RunFolder, read_marker
from ._settings import WorkflowSettings

__all__ = ["MARKER", "Run", "RunFolder", "WorkflowSettings", "finite_or_none", "read_run", "thin"]

logger = logging.getLogger("hybrax.experiments")


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
        kinds = {type(preset) for preset in (presets or {}).values()} or {WorkflowSettings}
        if not isinstance(settings, tuple(kinds)):
            names = " or ".join(sorted(kind.__name__ for kind in kinds))
            raise ConfigurationError(
                f"{workflow}: settings must be a {names} (e.g. the QUICK or FULL preset, or "
                f"QUICK.replace(...)), got {settings!r}; the run folder is the second argument"
            )
        _check_precision(settings)
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
    record = {} if MARKER in missing else read_marker(path)
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


def saved_settings(info: dict, settings_class, **defaults):
    """The settings a finished run used, from its ``run_info`` (as `read_run` returns it):
    ``dtype`` filled in with the dtype the run resolved, and ``defaults`` for fields the
    run predates."""
    fields = {**defaults, **info["settings"]}
    if fields.get("dtype") is None:  # the run used the default dtype: say which it was
        fields["dtype"] = info["dtype"]
    return settings_class.from_dict(fields)


def _check_precision(settings) -> None:
    """A ``dtype="float64"`` setting needs JAX's 64-bit mode, or JAX would silently compute
    in float32."""
    import jax

    if getattr(settings, "dtype", None) == "float64" and not jax.config.jax_enable_x64:
        raise ConfigurationError(
            "setting dtype='float64' needs JAX's 64-bit mode: run with --float64 (or "
            "jax.config.update('jax_enable_x64', True) before running)"
        )


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

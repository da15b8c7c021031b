"""Run folders: a workflow run writes only into a folder it owns.

The folder holds a marker file, ``.hybrax-run.json``, naming the workflow, its settings and
every file and folder the run created. A folder is claimed if it is new or empty, or reused
(and resumed) when its marker names the same workflow and settings; anything else raises
`hybrax.OverwriteError` naming the conflicting path. Nothing is ever removed.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from hybrax.core import ConfigurationError, OverwriteError

from ._settings import WorkflowSettings

__all__ = ["MARKER", "RunFolder", "read_marker"]

MARKER = ".hybrax-run.json"


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
            record = read_marker(path)
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


def read_marker(path: Path) -> dict:
    """The run marker in ``path`` (`hybrax.OverwriteError` if it is damaged)."""
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

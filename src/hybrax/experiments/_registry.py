"""Registry of ready workflows that `hybrax run NAME` executes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Workflow", "get_workflow", "list_workflows", "register_workflow"]


@dataclasses.dataclass(frozen=True)
class Workflow:
    """A named end-to-end job.

    ``run(out_dir, steps=None, quick=False, progress=True) -> dict`` writes its files
    (JSON metrics, PNG plots) under ``out_dir`` and returns the metrics it wrote.
    """

    name: str
    description: str
    run: Callable[..., dict[str, Any]]


_WORKFLOWS: dict[str, Workflow] = {}


def register_workflow(name: str, description: str):
    """Decorator registering ``fn(out_dir: Path, *, steps, quick, progress)`` as a workflow."""

    def decorate(fn: Callable[..., dict[str, Any]]):
        if name in _WORKFLOWS:
            raise ValueError(f"workflow {name!r} is already registered")
        _WORKFLOWS[name] = Workflow(name, description, fn)
        return fn

    return decorate


def list_workflows() -> list[Workflow]:
    """All registered workflows, sorted by name."""
    _load_builtin()
    return sorted(_WORKFLOWS.values(), key=lambda w: w.name)


def get_workflow(name: str) -> Workflow:
    """The workflow called ``name``; `KeyError` listing the known names otherwise."""
    _load_builtin()
    try:
        return _WORKFLOWS[name]
    except KeyError:
        known = ", ".join(sorted(_WORKFLOWS)) or "(none)"
        raise KeyError(f"no workflow named {name!r}; available: {known}") from None


def _load_builtin() -> None:
    # Importing the workflow modules registers them; they are imported lazily so that
    # `import hybrax` stays light.
    import importlib
    import pkgutil

    package = Path(__file__).parent
    for info in pkgutil.iter_modules([str(package)]):
        if not info.name.startswith("_"):
            importlib.import_module(f"hybrax.experiments.{info.name}")

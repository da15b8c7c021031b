"""Registry of ready workflows that `hybrax run NAME` executes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._settings import WorkflowSettings

__all__ = ["Workflow", "get_workflow", "list_workflows", "register_workflow"]


@dataclasses.dataclass(frozen=True)
class Workflow:
    """A named end-to-end job.

    ``run(settings, out=None, *, progress=True) -> dict`` writes its files (JSON metrics,
    PNG plots) into a run folder it owns and returns the metrics it wrote; ``full`` and
    ``quick`` are its preset settings.
    """

    name: str
    description: str
    run: Callable[..., dict[str, Any]]
    full: WorkflowSettings
    quick: WorkflowSettings

    def settings(
        self, *, quick: bool = False, overrides: Mapping[str, str] | None = None
    ) -> WorkflowSettings:
        """The preset (full or quick) with ``overrides`` (text, as from ``--set``) applied."""
        base = self.quick if quick else self.full
        return base.with_overrides(overrides) if overrides else base


_WORKFLOWS: dict[str, Workflow] = {}


def register_workflow(name: str, description: str, *, full, quick):
    """Decorator registering ``run(settings, out=None, *, progress=True)`` as a workflow
    with its ``full`` and ``quick`` settings."""

    def decorate(fn: Callable[..., dict[str, Any]]):
        if name in _WORKFLOWS:
            raise ValueError(f"workflow {name!r} is already registered")
        _WORKFLOWS[name] = Workflow(name, description, fn, full, quick)
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
    # Importing the workflow packages registers them; they are imported lazily so that
    # `import hybrax` stays light.
    import importlib
    import pkgutil

    package = Path(__file__).parent
    for info in pkgutil.iter_modules([str(package)]):
        if not info.name.startswith("_"):
            importlib.import_module(f"hybrax.experiments.{info.name}")

"""The ``hybrax`` command: list and run workflows, show their settings, report the JAX set-up.

``hybrax --version`` prints the version; ``hybrax info`` the versions of Python, JAX and the
libraries hybrax builds on, the devices and the precision (paste it into a bug report).
``hybrax run NAME [--quick] [--set KEY=VALUE ...] [--out DIR]`` runs a workflow with its
full (or quick) settings, each ``--set`` overriding one setting (``hybrax settings NAME``
lists them). Results go into a run folder the run owns: ``DIR`` if it is new or empty (or
holds a run of the same workflow and settings, which is then resumed), else a clear error;
without ``--out``, a fresh ``runs/NAME-NNN``. Bad input exits with status 2 and one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

#: The packages whose versions ``hybrax info`` reports (a bug report needs all of them).
DEPENDENCIES = (
    "jax",
    "jaxlib",
    "equinox",
    "flax",
    "optax",
    "orbax-checkpoint",
    "diffrax",
    "lineax",
    "optimistix",
    "jaxtyping",
    "numpy",
)


def _version(distribution: str) -> str:
    """The installed version of ``distribution`` (from its metadata, without importing it)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _info() -> dict:
    import jax

    import hybrax

    return {
        "hybrax": hybrax.__version__,
        "python": sys.version.split()[0],
        **{name: _version(name) for name in DEPENDENCIES},
        "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()],
        "process_count": jax.process_count(),
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "default_float": str(jax.numpy.zeros(()).dtype),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrax", description="Differentiable physics workflows in JAX."
    )
    parser.add_argument("--version", action="version", version=f"hybrax {_version('hybrax')}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the available workflows")
    sub.add_parser("info", help="versions of hybrax, JAX and its libraries; devices and precision")
    show = sub.add_parser("settings", help="a workflow's settings, their types and values")
    show.add_argument("name", help="workflow name (see `hybrax list`)")
    show.add_argument("--quick", action="store_true", help="show the quick preset")
    run = sub.add_parser("run", help="run a workflow")
    run.add_argument("name", help="workflow name (see `hybrax list`)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable); `hybrax settings NAME` lists them",
    )
    run.add_argument(
        "--out", type=Path, default=None, help="run folder (default: a fresh runs/NAME-NNN)"
    )
    run.add_argument("--quick", action="store_true", help="small, fast version (CI)")
    run.add_argument("--float64", action="store_true", help="run in double precision")
    run.add_argument("--no-progress", action="store_true", help="hide progress and timings")
    run.add_argument("--steps", default=None, help=argparse.SUPPRESS)  # removed: see main
    return parser


def _fail(message: str, status: int = 2) -> int:
    print(f"hybrax: {message}", file=sys.stderr)
    return status


def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "info":
        for key, value in _info().items():
            print(f"{key:>16}: {value}")
        return 0

    from hybrax.core import ConfigurationError, HybraxError, OverwriteError
    from hybrax.experiments import get_workflow, list_workflows

    if args.command == "list":
        for workflow in list_workflows():
            print(f"{workflow.name:<24} {workflow.description}")
        return 0
    try:
        workflow = get_workflow(args.name)
    except KeyError as error:
        return _fail(error.args[0])
    if args.command == "settings":
        settings = workflow.quick if args.quick else workflow.full
        for name, kind, _ in settings.describe():
            print(f"{name:<26} {kind:<28} {getattr(settings, name)!r}")
        return 0

    names = ", ".join(name for name, _, _ in workflow.full.describe())
    if args.steps is not None:
        return _fail(
            f"--steps was removed (it meant something different in every workflow); set the "
            f"setting you mean with --set KEY=VALUE. Settings of {args.name}: {names}"
        )
    try:
        settings = workflow.settings(quick=args.quick, overrides=_overrides(args.overrides))
    except (ConfigurationError, ValueError) as error:
        return _fail(str(error))
    if args.float64:
        import jax

        jax.config.update("jax_enable_x64", True)
    logger = logging.getLogger("hybrax.experiments")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # libraries (absl via orbax) may have configured the root logger
    try:
        metrics = workflow.run(settings, args.out, progress=not args.no_progress)
    except (ConfigurationError, OverwriteError) as error:
        return _fail(str(error))
    except HybraxError as error:
        return _fail(f"{type(error).__name__}: {error}", status=1)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    print(json.dumps(metrics, indent=1, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

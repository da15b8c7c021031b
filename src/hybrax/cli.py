"""The ``hybrax`` command: list and run workflows, report the JAX set-up."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _info() -> dict:
    import jax

    import hybrax

    return {
        "hybrax": hybrax.__version__,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()],
        "process_count": jax.process_count(),
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "default_float": str(jax.numpy.zeros(()).dtype),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hybrax", description="Differentiable physics workflows in JAX."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the available workflows")
    sub.add_parser("info", help="JAX version, devices and precision")
    run = sub.add_parser("run", help="run a workflow")
    run.add_argument("name", help="workflow name (see `hybrax list`)")
    run.add_argument("--steps", type=int, default=None, help="override the number of steps")
    run.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME)")
    run.add_argument("--quick", action="store_true", help="small, fast version (CI)")
    run.add_argument("--float64", action="store_true", help="run in double precision")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)

    if args.command == "info":
        for key, value in _info().items():
            print(f"{key:>14}: {value}")
        return 0

    from hybrax.experiments import get_workflow, list_workflows

    if args.command == "list":
        for workflow in list_workflows():
            print(f"{workflow.name:<24} {workflow.description}")
        return 0

    try:
        workflow = get_workflow(args.name)
    except KeyError as error:
        print(f"hybrax: {error.args[0]}", file=sys.stderr)
        return 2
    if args.steps is not None and args.steps < 1:
        print(f"hybrax: --steps must be a positive integer, got {args.steps}", file=sys.stderr)
        return 2
    if args.float64:
        import jax

        jax.config.update("jax_enable_x64", True)
    out_dir = args.out if args.out is not None else Path("runs") / args.name
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = workflow.run(
        out_dir, steps=args.steps, quick=args.quick, progress=not args.no_progress
    )
    print(json.dumps(metrics, indent=1, default=str))
    print(f"wrote results to {out_dir}/", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

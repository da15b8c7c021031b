"""Shared harness for `python benchmarks/NAME.py [--quick] [--json PATH]`.

Every benchmark produces a list of records ``{"case", "tool", "metric", "value", "unit",
"note", "config"}``, prints them as a table (with ratios to a baseline tool where given) and
writes them as JSON. ``config`` names the configuration a tool ran in (for peers: the fastest
of the formats and speed options the benchmark tried), so every figure says what it measured.
Timings are medians over repeats of a compiled, warmed-up function; the caller blocks on
the result, so asynchronous dispatch is not mistaken for speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax


@dataclasses.dataclass
class Record:
    case: str
    tool: str
    metric: str
    value: float
    unit: str
    note: str = ""
    config: str = ""


# The clock of `time_call` and `interleaved_samples` unless one is passed: wall time, or with
# ``--clock cpu`` the CPU seconds of this process, which on a shared machine (other jobs
# time-slicing the same core) are far steadier. Pin the process to one core (taskset -c 0)
# when using CPU time: then a second of CPU is a second of one core.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock: dict[str, Callable[[], float]] = {"now": time.perf_counter}


def clock_now() -> float:
    return _clock["now"]()


def set_clock(name: str) -> None:
    """Use the ``"wall"`` or ``"cpu"`` clock from now on (what ``--clock`` does)."""
    _clock["now"] = CLOCKS[name]


def parse_args(
    description: str, argv: Sequence[str] | None = None, parts: Sequence[str] = ()
) -> argparse.Namespace:
    """The shared command line. ``parts`` names a script's independent sections; when given,
    ``--parts a,b`` runs a subset (``args.parts``, a tuple in the given order; default all)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="time with the wall clock (default) or this process's CPU seconds (steadier on a "
        "shared machine; pin to one core with taskset -c 0)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--json", type=str, default=None, help="write records to this path")
    parser.add_argument("--float64", action="store_true", help="also run float64 cases")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=None,
        help="override the problem sizes, e.g. 256,1024 (GPU-sized runs)",
    )
    if parts:

        def subset(text: str) -> tuple[str, ...]:
            chosen = tuple(p for p in text.split(",") if p)
            unknown = [p for p in chosen if p not in parts]
            if unknown or not chosen:
                raise argparse.ArgumentTypeError(
                    f"unknown part(s) {unknown or text!r}; choose from {','.join(parts)}"
                )
            return chosen

        parser.add_argument(
            "--parts",
            type=subset,
            default=tuple(parts),
            help=f"comma-separated subset of {','.join(parts)} (default: all)",
        )
    args = parser.parse_args(argv)
    set_clock(args.clock)
    return args


def block(tree: Any) -> Any:
    return jax.block_until_ready(tree)


def time_call(
    fn: Callable[[], Any],
    *,
    repeat: int = 5,
    min_time: float = 0.2,
    clock: Callable[[], float] | None = None,
) -> float:
    """Median time in seconds of ``fn()`` (already compiled: one warm-up call first), by
    ``clock`` (default: the one chosen with ``--clock``, wall time unless told).

    Each repeat runs ``fn`` as many times as needed to last ``min_time`` seconds.
    """
    clock = clock or clock_now
    block(fn())
    start = clock()
    block(fn())
    once = max(clock() - start, 1e-7)
    number = max(1, int(min_time / once))
    samples = []
    for _ in range(repeat):
        start = clock()
        for _ in range(number):
            out = fn()
        block(out)
        samples.append((clock() - start) / number)
    return statistics.median(samples)


def interleaved_samples(
    calls: dict[str, Callable[[], Any]],
    rounds: int,
    min_time: float = 0.3,
    *,
    clock: Callable[[], float] | None = None,
    warm: bool = True,
) -> dict[str, list[float]]:
    """Seconds per call of each ``calls[name]()``, one sample per round. In every round each
    call is timed once in turn (repeated to last about ``min_time``), so load from other
    processes on a shared machine hits all tools alike. Each call is warmed up first.

    ``clock`` is ``time.perf_counter`` (wall) or ``time.process_time`` (CPU seconds of this
    process: steadier on a shared machine when the process is pinned to one core); by
    default the one chosen with ``--clock``.
    ``warm=False`` is for long calls already compiled and run once by the caller: no warm-up
    and one call per sample."""
    clock = clock or clock_now
    numbers = {}
    for name, fn in calls.items():
        if not warm:
            numbers[name] = 1
            continue
        block(fn())
        start = clock()
        block(fn())
        numbers[name] = max(1, int(min_time / max(clock() - start, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = clock()
            for _ in range(numbers[name]):
                out = fn()
            block(out)
            samples[name].append((clock() - start) / numbers[name])
    return samples


def interleaved_times(
    calls: dict[str, Callable[[], Any]], rounds: int = 5, min_time: float = 0.3
) -> dict[str, float]:
    """The least disturbed (minimum) sample of `interleaved_samples`, in seconds per call."""
    return {k: min(v) for k, v in interleaved_samples(calls, rounds, min_time).items()}


def compile_seconds(jitted: Callable, *args) -> tuple[float, Any]:
    """Seconds to lower and compile ``jitted`` for ``args``; returns (seconds, compiled)."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return time.perf_counter() - start, compiled


def temp_bytes(compiled) -> int:
    """Scratch memory (bytes) the compiled executable needs, from XLA's memory analysis."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return -1
    return int(analysis.temp_size_in_bytes)


def environment() -> dict[str, Any]:
    return {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "x64": bool(jax.config.jax_enable_x64),
        "hybrax_commit": _commit(),
        "clock": next((k for k, v in CLOCKS.items() if v is _clock["now"]), "wall"),
    }


def _commit() -> str | None:
    """The git commit of the hybrax checkout being measured ($HYBRAX_COMMIT if set, for runs
    from an exported tree)."""
    if os.environ.get("HYBRAX_COMMIT"):
        return os.environ["HYBRAX_COMMIT"]
    try:
        import subprocess

        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def report(
    records: list[Record],
    path: str | None,
    *,
    baseline: dict[str, str] | None = None,
    higher_is_better: Sequence[str] = ("steps_per_s", "atom_steps_per_s", "members_steps_per_s"),
) -> None:
    """Print a table (with ratios hybrax/other for each case and metric) and write JSON.

    ``baseline`` maps a metric to the tool every other tool is compared with (default
    ``hybrax``): the ratio column says how many times better hybrax is.
    """
    baseline = baseline or {}
    by_key: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        by_key.setdefault((r.case, r.metric), []).append(r)
    width = max([len(r.case) for r in records] + [4])
    tool_width = max([len(r.tool) for r in records] + [18])
    print(
        f"\n{'case':<{width}}  {'tool':<{tool_width}} {'metric':<22} {'value':>14} "
        f"{'unit':<10} {'ratio':<15} config"
    )
    for (case, metric), rows in by_key.items():
        ref_tool = baseline.get(metric, "hybrax")
        ref = next((r for r in rows if r.tool == ref_tool), None)
        for r in rows:
            ratio = ""
            if ref is not None and r.tool != ref_tool and r.value and ref.value:
                better = ref.value / r.value if metric in higher_is_better else r.value / ref.value
                ratio = f"{ref_tool} {better:.2f}x"
            print(
                f"{case:<{width}}  {r.tool:<{tool_width}} {metric:<22} {r.value:>14.6g} "
                f"{r.unit:<10} {ratio:<15} {r.config}".rstrip()
            )
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        payload = [dataclasses.asdict(r) for r in records]
        with open(path, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"\nwrote {len(records)} records to {path}", file=sys.stderr)
    out_dir = os.environ.get("OUT")
    if out_dir and not path:
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump([dataclasses.asdict(r) for r in records], f, indent=1)


def write_environment(path: str | None) -> None:
    if path:
        with open(os.path.splitext(path)[0] + ".env.json", "w") as f:
            json.dump(environment(), f, indent=1)

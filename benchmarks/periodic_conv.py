"""Periodic convolution layers on CPU: shifted matrix products vs XLA's convolution.

`hybrax.nn.PeriodicConv` (and every network built from it: `PeriodicCNN`,
`PeriodicResNet`, `PeriodicUNet`) computes a ``k x k`` circular convolution on CPU as a sum
of ``k**2`` matrix products of the layer's taps with rolled copies of the input, except
for layers of at most 8 channels in and out, which run XLA's convolution forward (faster
at those widths, also inside loops) and the shifted products' derivative backward; on
other backends it calls `equinox.nn.Conv` (XLA's convolution, cuDNN on GPUs). This script times
one layer both ways, interleaved, on the same weights and input, float32, and checks that
they agree: called alone (``ms_per_layer``), and applied 20 times inside a `jax.lax.scan`
(``ms_per_layer_in_scan``, per application), which is how a network runs inside a hybrid
solver's rollout and an unrolled training loss. XLA's CPU convolution is fast alone but
falls off its fast path inside a loop body beyond 8 channels; the shifted products cost
the same in both places.

    python benchmarks/periodic_conv.py [--quick] [--json benchmarks/results/periodic_conv.json]
"""

from __future__ import annotations

import functools

import _harness as H
import jax
import jax.numpy as jnp

from hybrax.nn import PeriodicConv

SCAN_LENGTH = 20
CASES_QUICK = ((32, 8, 3), (32, 16, 3), (64, 32, 3))
CASES_FULL = ((32, 8, 3), (32, 16, 3), (32, 32, 3), (64, 16, 3), (64, 32, 5), (128, 32, 3))


def run_case(n: int, channels: int, kernel: int, records: list, rounds: int) -> None:
    layer = PeriodicConv(2, channels, channels, kernel, key=jax.random.key(0), dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(1), (channels, n, n), jnp.float32)
    tools = {
        "hybrax PeriodicConv": lambda c, x: c(x),
        "XLA convolution": lambda c, x: c.conv(x),
    }
    calls = {}
    for tool, apply in tools.items():
        forward = jax.jit(apply)
        in_scan = jax.jit(functools.partial(_scanned, apply))
        gradient = jax.jit(jax.grad(lambda c, x, f=apply: jnp.sum(_scanned(f, c, x))))
        calls[(tool, "ms_per_layer")] = functools.partial(forward, layer, x)
        calls[(tool, "ms_per_layer_in_scan")] = functools.partial(in_scan, layer, x)
        calls[(tool, "ms_per_gradient_in_scan")] = functools.partial(gradient, layer, x)
    ours, theirs = (jax.jit(f)(layer, x) for f in tools.values())
    difference = float(jnp.max(jnp.abs(ours - theirs)) / jnp.max(jnp.abs(theirs)))
    seconds = H.interleaved_times(calls, rounds=rounds, min_time=0.2)
    case = f"{n}^2, {channels} channels, {kernel}x{kernel}"
    for (tool, metric), s in seconds.items():
        note = f"max rel. difference {difference:.1e}" if tool.startswith("h") else ""
        per = SCAN_LENGTH if "scan" in metric else 1
        records.append(H.Record(case, tool, metric, s * 1e3 / per, "ms", note, "jit"))


def _scanned(apply, layer, x):
    """``SCAN_LENGTH`` applications of the layer (with tanh) inside one `jax.lax.scan`."""
    step = lambda y, _: (jnp.tanh(apply(layer, y)), None)  # noqa: E731
    return jax.lax.scan(step, x, None, length=SCAN_LENGTH)[0]


def main(argv=None) -> None:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    records: list[H.Record] = []
    for n, channels, kernel in CASES_QUICK if args.quick else CASES_FULL:
        run_case(n, channels, kernel, records, 3 if args.quick else 5)
    metrics = ("ms_per_layer", "ms_per_layer_in_scan", "ms_per_gradient_in_scan")
    baseline = dict.fromkeys(metrics, "hybrax PeriodicConv")
    H.report(records, args.json, baseline=baseline)
    H.write_environment(args.json)


if __name__ == "__main__":
    main()

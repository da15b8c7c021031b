"""The report pieces shared by the workflows that set learned coarse models against plain
solvers at several resolutions (``kolmogorov-correction``, ``fv-learned-interpolation``):
the comparison table and the accuracy-against-cost figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import _plotting

__all__ = ["accuracy_cost_figure", "resolution_table"]


def resolution_table(metrics: dict, censored: Sequence[str] = ()) -> str:
    """``metrics`` (``decorrelation_time`` and ``seconds_per_time_unit`` per model, and
    optionally ``network_parameters``) as a text table, with each decorrelation time
    relative to ``plain_1x`` and each cost relative to ``plain_2x``. ``censored`` names the
    models whose decorrelation time is only a lower bound (shown as ``>= t``)."""
    decor, cost = metrics["decorrelation_time"], metrics["seconds_per_time_unit"]
    params = metrics.get("network_parameters")
    width = max(len("model"), *(len(name) for name in decor)) + 2
    header = (
        f"{'model':<{width}}{'decorrelation':>15}{'vs plain_1x':>13}{'s / time unit':>15}"
        f"{'vs plain_2x':>13}" + (f"{'parameters':>12}" if params else "")
    )
    lines = [header, "-" * len(header)]
    for name in decor:
        bound = ">=" if name in censored else ""
        ratio = decor[name] / decor["plain_1x"] if decor.get("plain_1x") else math.nan
        cost_ratio = cost[name] / cost["plain_2x"] if cost.get("plain_2x") else math.nan
        lines.append(
            f"{name:<{width}}{bound + f'{decor[name]:.3f}':>15}{ratio:>12.2f}x"
            f"{cost[name]:>15.4g}{cost_ratio:>12.2f}x"
            + (f"{params.get(name, 0):>12d}" if params else "")
        )
    return "\n".join(lines)


def accuracy_cost_figure(
    run,
    names: Sequence[str],
    decorrelation: dict,
    cost: dict,
    title: str,
    censored=(),
    xlabel: str = "wall time per simulated time unit (s, one trajectory, this CPU)",
    filename: str = "accuracy_cost.png",
) -> None:
    """Save ``accuracy_cost.png`` in ``run``: each model's decorrelation time against its
    wall time per simulated time unit (log axes). The plain solvers (names starting with
    ``plain``) are joined by a line, so a learned model above and to the left of it beats
    resolution at equal cost; dotted lines mark ``plain_2x``'s decorrelation time and cost
    (the goal: the upper-left quadrant). ``xlabel`` names the cost axis, ``filename`` the
    file."""
    from matplotlib.ticker import LogLocator, NullFormatter

    fig, ax = _plotting.figure(figsize=(6.5, 4.2))
    plain = [name for name in names if name.startswith("plain")]
    ax.plot([cost[n] for n in plain], [decorrelation[n] for n in plain], "k-", lw=0.8, zorder=1)
    if "plain_2x" in decorrelation:
        goal = dict(color="grey", lw=0.8, ls=":", zorder=0)
        ax.axhline(decorrelation["plain_2x"], **goal)
        ax.axvline(cost["plain_2x"], **goal)
    for index, name in enumerate(names):
        marker = "o" if name.startswith("plain") else "*"
        ax.scatter(cost[name], decorrelation[name], marker=marker, s=80, zorder=2, label=name)
        bound = " (>=)" if name in censored else ""
        ax.annotate(
            name + bound,
            (cost[name], decorrelation[name]),
            textcoords="offset points",
            xytext=(6, -4 if index % 2 else 6),  # alternate, so neighbours do not overlap
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("decorrelation time (model time units)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    run.save_figure(fig, filename)

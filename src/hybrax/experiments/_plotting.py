"""Plot conventions shared by the workflows.

Figures are `matplotlib.figure.Figure` objects (no pyplot state, no display needed), one
figure per PNG file, saved by `save` with a tight layout at 120 dpi unless told otherwise.
Plots stay with their workflow (``report.py``); only helpers several workflows use live here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def figure(figsize: tuple = (5.5, 4)):
    """A new headless figure with one axes: ``(fig, ax)``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def save(fig, path: Path, *, dpi: int = 120) -> Path:
    """Lay out ``fig`` tightly and write it to ``path`` (PNG)."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def hovmoller(ax, values: np.ndarray, times: np.ndarray, *, label: str, cmap: str = "RdBu_r"):
    """Space-time diagram of ``values`` (time, site) saved at ``times``, time upwards."""
    times = np.asarray(times, dtype=float)
    step = times[1] - times[0] if len(times) > 1 else 1.0
    time_edges = np.concatenate([times - step / 2, times[-1:] + step / 2])
    site_edges = np.arange(values.shape[1] + 1) - 0.5
    limit = float(np.max(np.abs(values)))
    mesh = ax.pcolormesh(
        site_edges, time_edges, values, cmap=cmap, vmin=-limit, vmax=limit, shading="flat"
    )
    ax.set_xlabel("site k")
    ax.set_ylabel("time (model units)")
    ax.figure.colorbar(mesh, ax=ax, label=label)
    return mesh

"""Small matplotlib helpers shared by the workflows (headless: Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
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

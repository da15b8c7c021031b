"""Progress bars for long jitted loops, driven from inside the computation."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import jax
import numpy as np
from jax import lax
from jaxtyping import Array

__all__ = ["ProgressCallback", "progress_bar"]


def _in_notebook() -> bool:
    """Whether we run inside a Jupyter kernel (an IPython ZMQ shell), not merely in a process
    that imported ipykernel (e.g. a test runner that executes notebooks)."""
    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm progress bar that suits where the output goes.

    In a Jupyter kernel: a widget bar when ``ipywidgets`` is installed, else a text bar (so
    no ``IProgress not found`` warning). Elsewhere: a text bar on stderr that turns itself
    off when stderr is not a terminal (``disable=None``), so redirected logs are not
    flooded. Keyword arguments go to ``tqdm`` (an explicit ``disable=`` wins).

    Examples
    --------
    >>> from hybrax.core import progress_bar
    >>> bar = progress_bar(total=3, desc="demo", disable=True)
    >>> bar.update(3); bar.close()
    """
    if _in_notebook():
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.notebook import tqdm
        else:
            from tqdm.std import tqdm
        kwargs.setdefault("disable", False)
    else:
        from tqdm.std import tqdm

        kwargs.setdefault("disable", None)  # tqdm: off when the output is not a TTY
    return tqdm(**kwargs)


class ProgressCallback:
    """A tqdm bar that a jitted loop advances through `jax.debug.callback`.

    Created at trace time; each execution of the compiled loop starts a fresh bar when it
    reports iteration 0 and closes it at the last one. About 100 updates per run, so the
    host round trips cost nothing noticeable.
    """

    def __init__(self, total: int, description: str):
        self.total = int(total)
        self.description = description
        self.stride = max(1, self.total // 100)
        self._bar = None

    def update(self, index: Array) -> None:
        """Report that iteration ``index`` (0-based, traced) has finished."""
        last = self.total - 1
        report = (index % self.stride == 0) | (index == last)
        lax.cond(
            report,
            lambda i: jax.debug.callback(self._host_update, i),
            lambda i: None,
            index,
        )

    def _host_update(self, index) -> None:
        i = int(np.max(np.asarray(index)))
        if self._bar is None or i == 0:
            if self._bar is not None:
                self._bar.close()
            self._bar = progress_bar(total=self.total, desc=self.description, leave=False)
        self._bar.update(i + 1 - self._bar.n)
        if i + 1 >= self.total:
            self._bar.close()
            self._bar = None

"""Progress bars for long jitted loops, driven from inside the computation."""

from __future__ import annotations

import jax
import numpy as np
from jax import lax
from jaxtyping import Array
from tqdm.auto import tqdm

__all__ = ["ProgressCallback"]


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
            self._bar = tqdm(total=self.total, desc=self.description, leave=False)
        self._bar.update(i + 1 - self._bar.n)
        if i + 1 >= self.total:
            self._bar.close()
            self._bar = None

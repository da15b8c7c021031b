"""`fit`'s side of checkpointing: one open `hybrax.io.Checkpointer` and the layout of what
it stores (model arrays, optimizer state, step counter, data-order key, history)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import equinox as eqx
import jax.numpy as jnp

from hybrax.core import CheckpointError, ConfigurationError

from ._fit_options import Checkpoints

__all__ = ["CheckpointSession", "truncate"]


def truncate(history: Mapping[str, list], step: int) -> dict[str, list]:
    """The history as it stood when the parameters after ``step`` updates were verified."""
    return {
        "train": [dict(e) for e in history.get("train", []) if e["step"] < step],
        "eval": [dict(e) for e in history.get("eval", []) if e["step"] <= step],
    }


class CheckpointSession:
    """The checkpoints of one `fit` call.

    ``spec`` is the trainable filter, ``static`` the model's non-array part and ``key`` the
    data-order key, all fixed for the run; the arrays that are not trained
    (``rest_arrays``) are stored with the model and may be replaced on restore.
    """

    def __init__(self, policy: Checkpoints, spec, rest_arrays, static, key):
        from hybrax.io import Checkpointer

        self.policy, self.spec, self.static = policy, spec, static
        self.rest_arrays, self.key = rest_arrays, key
        directory = os.fspath(policy.directory)
        try:
            self.checkpointer = Checkpointer(directory, max_to_keep=policy.keep)
        except ConfigurationError as error:
            raise ConfigurationError(f"fit: Checkpoints.directory: {error}") from error
        saved = self.checkpointer.all_steps()
        if not policy.resume and saved:
            self.checkpointer.close()
            raise ConfigurationError(
                f"fit: Checkpoints.directory={directory!r} already holds checkpoints "
                f"(steps {saved}) and resume=False; pass resume=True to continue from them, "
                "or an empty directory to start afresh"
            )

    @property
    def directory(self):
        return self.checkpointer.directory

    def _tree(self, params, opt_state, step):
        return {
            "model": eqx.combine(params, self.rest_arrays),
            "opt_state": opt_state,
            "loop": {"step": jnp.asarray(step, jnp.int32), "key": self.key},
        }

    def _read(self, tree):
        """(trainable params, optimizer state, step) of a restored checkpoint; the other
        arrays become ``rest_arrays`` and the key ``key``."""
        params, rest = eqx.partition(eqx.combine(tree["model"], self.static), self.spec)
        self.rest_arrays = eqx.filter(rest, eqx.is_array)
        self.key = tree["loop"]["key"]
        return params, tree["opt_state"], int(tree["loop"]["step"])

    def resume(self, params, opt_state, history):
        """``(params, opt_state, step, history)`` of the newest intact checkpoint (a damaged
        one is moved aside with a warning), or the arguments and step 0 if there is none
        or ``resume=False``."""
        if not self.policy.resume or self.checkpointer.latest_step is None:
            return params, opt_state, 0, history
        restored, metadata = self.checkpointer.restore(
            self._tree(params, opt_state, 0), fallback=True
        )
        params, opt_state, step = self._read(restored)
        return params, opt_state, step, truncate(metadata.get("history", history), step)

    def save(self, step, params, opt_state, history) -> None:
        self.checkpointer.save(
            step, self._tree(params, opt_state, step), metadata={"history": history}
        )

    def newest_before(self, step, params, opt_state):
        """``(good_step, params, opt_state, history)`` of the newest readable checkpoint
        older than ``step``, or ``None``; unreadable ones are skipped with a warning."""
        for saved in reversed([s for s in self.checkpointer.all_steps() if s < step]):
            try:
                restored, metadata = self.checkpointer.restore(
                    self._tree(params, opt_state, 0), step=saved
                )
            except (CheckpointError, OSError) as error:
                warnings.warn(f"fit: skipping checkpoint {saved}: {error}", stacklevel=4)
                continue
            good_params, good_opt_state, good_step = self._read(restored)
            return good_step, good_params, good_opt_state, metadata.get("history", {})
        return None

    def close(self) -> None:
        self.checkpointer.close()

"""Error types and run-time error messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

__all__ = ["NonFiniteStateError"]


class NonFiniteStateError(FloatingPointError):
    """A simulation produced NaN or inf."""


@dataclasses.dataclass(frozen=True)
class StepMessages(Sequence):
    """Lazily formatted messages ``template.format(step=i + 1, total=total)`` for
    ``equinox.branched_error_if``: one per step, built only when an error is raised."""

    template: str
    total: int

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.total))]
        return self.template.format(step=int(index) + 1, total=self.total)

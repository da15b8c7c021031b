"""`fit`'s argument checks: each names the argument, what it got and what would do."""

from __future__ import annotations

from hybrax.core import ConfigurationError

from ._fit_options import AbstractCallback, Checkpoints, DataParallel

__all__ = [
    "check_callbacks",
    "check_int",
    "check_loss_and_optimizer",
    "check_options",
]


def check_int(name: str, value, minimum: int, where: str = "fit") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")


def check_callbacks(callbacks) -> tuple[AbstractCallback, ...]:
    if isinstance(callbacks, AbstractCallback):
        callbacks = (callbacks,)
    try:
        callbacks = tuple(callbacks)
    except TypeError:
        callbacks = (callbacks,)
    for c in callbacks:
        if not isinstance(c, AbstractCallback):
            raise ConfigurationError(
                "fit: callbacks must be hybrax.hybrid callbacks such as Evaluate(fn, every=10), "
                f"History(path) or Progress(); got {c!r}"
            )
    return callbacks


def check_options(checkpoints, sharding) -> None:
    if checkpoints is not None and not isinstance(checkpoints, Checkpoints):
        raise ConfigurationError(
            "fit: checkpoints must be a hybrax.hybrid.Checkpoints such as "
            f"Checkpoints('run/checkpoints', every=100), got {checkpoints!r}"
        )
    if sharding is not None and not isinstance(sharding, DataParallel):
        raise ConfigurationError(
            "fit: sharding must be a hybrax.hybrid.DataParallel such as "
            f"DataParallel(hybrax.parallel.make_mesh()), got {sharding!r}"
        )


def check_loss_and_optimizer(loss, optimizer) -> None:
    if not callable(loss):
        raise ConfigurationError(
            f"fit: loss must be a callable (model, batch) -> scalar such as "
            f"hybrax.hybrid.UnrolledLoss(5), or a hybrax.hybrid.Curriculum; got {loss!r}"
        )
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise ConfigurationError(
            f"fit: optimizer must be an optax.GradientTransformation such as "
            f"optax.adam(1e-3), got {optimizer!r}"
        )

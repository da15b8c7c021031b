"""Climate toy models: Lorenz-63/96 (one- and two-scale)."""

from ._lorenz import Lorenz63, Lorenz96, TwoScaleLorenz96, TwoScaleState

__all__ = ["Lorenz63", "Lorenz96", "TwoScaleLorenz96", "TwoScaleState"]

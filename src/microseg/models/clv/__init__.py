"""Customer lifetime value: the BTYD models of repeat buying and spend."""

from microseg.models.clv.base import BTYDModel, ConvergenceError
from microseg.models.clv.bgnbd import BGNBD

__all__ = ["BGNBD", "BTYDModel", "ConvergenceError"]

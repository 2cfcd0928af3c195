"""Customer lifetime value: the BTYD models of repeat buying (with dropout, and the NBD without)
and spend, and the CLV they give."""

from microseg.models.clv.base import BTYDModel, ConvergenceError
from microseg.models.clv.bgbb import BGBB
from microseg.models.clv.bgnbd import BGNBD
from microseg.models.clv.gammagamma import GammaGamma
from microseg.models.clv.mbgnbd import MBGNBD
from microseg.models.clv.nbd import NBD
from microseg.models.clv.paretonbd import ParetoNBD
from microseg.models.clv.sbg import ShiftedBetaGeometric
from microseg.models.clv.value import customer_lifetime_value, discounted_expected_purchases

__all__ = [
    "BGBB",
    "BGNBD",
    "BTYDModel",
    "ConvergenceError",
    "GammaGamma",
    "MBGNBD",
    "NBD",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "customer_lifetime_value",
    "discounted_expected_purchases",
]

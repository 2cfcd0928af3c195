"""Lifecycle stage of every customer as of a date: the first layer of segmentation.

Stages: ``prospect`` (known, never bought), ``new``, ``active``, ``at_risk``, ``churned`` and
``reactivated``. The default rules judge each customer by their own buying rhythm rather than one
day count for everybody, and use P(alive) from the CLV model where it is confident (a run sets the
P(alive) thresholds aside when its model cannot tell whether customers leave at all, see
``microseg.models.clv.selection``):

1. **prospect**: no purchase yet.
2. **reactivated**: came back within ``new_days`` after a pause of at least
   ``reactivation_gap_days`` between two purchases.
3. **new**: first purchase within the last ``new_days``.
4. The others by *lateness*: days since the last purchase divided by the customer's rhythm
   (mean days between their purchases). One-time buyers have no rhythm of their own: they get
   the typical rhythm of the repeat buyers (the median, learned by ``fit``), floored at
   ``one_time_floor_days`` so that a single purchase is not called lost too soon.

   * **churned**: lateness >= ``churned_lateness``, or P(alive) < ``churned_p_alive``;
   * **at_risk**: lateness >= ``at_risk_lateness``, or P(alive) < ``at_risk_p_alive``;
   * **active**: otherwise.

>>> import pandas as pd
>>> profile = pd.DataFrame({
...     "transactions": [0, 3, 5, 5, 4, 1],
...     "days_since_first_purchase": [None, 30, 400, 400, 300, 250],
...     "days_since_last_purchase": [None, 10, 20, 120, 400, 250],
...     "rhythm_days": [None, 10, 40, 40, 30, None],
...     "last_return_after_gap": [None] * 6,
...     "days_since_return": [None] * 6})
>>> LifecycleModel().fit(profile).predict(profile).tolist()
['prospect', 'new', 'active', 'at_risk', 'churned', 'churned']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from microseg.errors import InvalidInputError
from microseg.models.base import Estimator, Interval, Optional, require_columns
from microseg.registry import STAGES

__all__ = ["STAGES", "LifecycleModel"]


#: The profile columns the stages are read from (``p_alive`` is optional).
PROFILE_COLUMNS = (
    "transactions",
    "days_since_first_purchase",
    "days_since_last_purchase",
    "rhythm_days",
    "days_since_return",
)


class LifecycleModel(Estimator):
    """Rule-based lifecycle stages, with each customer's own rhythm as the yardstick.

    ``fit(profile)`` learns ``typical_rhythm_days_`` (the median rhythm of repeat buyers);
    ``predict(profile)`` returns one stage per row. The profile needs ``transactions``,
    ``days_since_first_purchase``, ``days_since_last_purchase``, ``rhythm_days`` and
    ``days_since_return`` (days since the last purchase that followed a long pause; empty when
    none), and may have ``p_alive``.
    """

    _constraints = {
        "new_days": Interval(1, None, integer=True),
        "reactivation_gap_days": Interval(1, None, integer=True),
        "at_risk_lateness": Interval(0, None, closed="neither"),
        "churned_lateness": Interval(0, None, closed="neither"),
        "one_time_floor_days": Interval(0, None, integer=True),
        "at_risk_p_alive": Optional(Interval(0, 1)),
        "churned_p_alive": Optional(Interval(0, 1)),
    }

    def __init__(
        self,
        new_days: int = 90,
        reactivation_gap_days: int = 365,
        at_risk_lateness: float = 1.6,
        churned_lateness: float = 4.0,
        one_time_floor_days: int = 50,
        at_risk_p_alive: float | None = 0.3,
        churned_p_alive: float | None = 0.05,
    ) -> None:
        self.new_days = new_days
        self.reactivation_gap_days = reactivation_gap_days
        self.at_risk_lateness = at_risk_lateness
        self.churned_lateness = churned_lateness
        self.one_time_floor_days = one_time_floor_days
        self.at_risk_p_alive = at_risk_p_alive
        self.churned_p_alive = churned_p_alive

    def fit(self, profile: pd.DataFrame) -> LifecycleModel:
        self._validate_params()
        if self.churned_lateness <= self.at_risk_lateness:
            raise InvalidInputError(
                f"LifecycleModel: churned_lateness ({self.churned_lateness}) must be above "
                f"at_risk_lateness ({self.at_risk_lateness})"
            )
        require_columns(profile, ("transactions", "rhythm_days"), "LifecycleModel.fit: profile")
        rhythm = pd.to_numeric(profile["rhythm_days"], errors="coerce")
        rhythm = rhythm[(profile["transactions"] > 1) & rhythm.notna() & (rhythm > 0)]
        self.typical_rhythm_days_ = float(rhythm.median()) if len(rhythm) else float(self.one_time_floor_days)
        return self

    def lateness(self, profile: pd.DataFrame) -> np.ndarray:
        """Days since the last purchase in units of the customer's rhythm (NaN for prospects)."""
        self._check_fitted()
        require_columns(profile, ("rhythm_days", "days_since_last_purchase"), "LifecycleModel: profile")
        rhythm = pd.to_numeric(profile["rhythm_days"], errors="coerce").to_numpy(float)
        fallback = max(self.typical_rhythm_days_, float(self.one_time_floor_days))
        rhythm = np.where(np.isfinite(rhythm) & (rhythm > 0), rhythm, fallback)
        return pd.to_numeric(profile["days_since_last_purchase"], errors="coerce").to_numpy(float) / rhythm

    def predict(self, profile: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        require_columns(profile, PROFILE_COLUMNS, "LifecycleModel.predict: profile")
        n = len(profile)
        bought = profile["transactions"].fillna(0).to_numpy() > 0
        since_first = pd.to_numeric(profile["days_since_first_purchase"], errors="coerce").to_numpy(float)
        since_return = pd.to_numeric(profile["days_since_return"], errors="coerce").to_numpy(float)
        late = self.lateness(profile)
        p_alive = (
            pd.to_numeric(profile["p_alive"], errors="coerce").to_numpy(float)
            if "p_alive" in profile
            else np.full(n, np.nan)
        )
        with np.errstate(invalid="ignore"):
            churned = late >= self.churned_lateness
            at_risk = late >= self.at_risk_lateness
            if self.churned_p_alive is not None:
                churned |= p_alive < self.churned_p_alive
            if self.at_risk_p_alive is not None:
                at_risk |= p_alive < self.at_risk_p_alive
            stage = np.where(churned, "churned", np.where(at_risk, "at_risk", "active")).astype(object)
            stage[since_first <= self.new_days] = "new"
            stage[since_return <= self.new_days] = "reactivated"
        stage[~bought] = "prospect"
        return stage

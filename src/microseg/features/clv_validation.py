"""The holdout check of the repeat-buying models on a project's events: the calibration period
is planned (or given), the models are fitted on it and compared with what customers bought
afterwards (see ``microseg.models.clv.validation``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from microseg.config import ClvConfig
from microseg.errors import InvalidInputError, MicrosegError
from microseg.registry import suggest
from microseg.warehouse import queries
from microseg.warehouse.duckdb import DuckDBWarehouse

if TYPE_CHECKING:
    from microseg.models.clv.validation import ClvValidation


def validate_clv(
    events,
    wh: DuckDBWarehouse,
    settings: ClvConfig,
    end: dt.date,
    *,
    calibration_end: dt.date | None = None,
    holdout_days: int | None = None,
    models: Iterable[str] | None = None,
) -> ClvValidation:
    """Check the repeat-buying models on a holdout period: fitted on the customers who bought
    by ``calibration_end`` (default: ``holdout_days`` before ``end``, itself by default
    ``clv.holdout_days``, 0 meaning a third of the history up to a year), compared with what
    they bought up to ``end``. ``models`` defaults to the configured model, all of them with
    ``auto``. See ``microseg.models.clv.validation``.

    >>> import datetime as dt
    >>> validate_clv(None, None, ClvConfig(), dt.date(2025, 12, 31), models=["bgnb"])
    Traceback (most recent call last):
    ...
    microseg.errors.InvalidInputError: no repeat-buying model 'bgnb' (did you mean "bgnbd"?); models: bgnbd, paretonbd, mbgnbd, nbd
    """
    from microseg.features.rfm import calibration_holdout
    from microseg.features.valuation import repeat_transaction_days
    from microseg.models.clv.selection import REPEAT_BUYING_MODELS, plan_holdout
    from microseg.models.clv.validation import validate_models

    if models:
        names = list(models)
    else:
        names = list(REPEAT_BUYING_MODELS) if settings.model == "auto" else [settings.model]
    for name in names:
        if name not in REPEAT_BUYING_MODELS:
            raise InvalidInputError(
                f"no repeat-buying model {name!r}{suggest(name, REPEAT_BUYING_MODELS)}; "
                f"models: {', '.join(REPEAT_BUYING_MODELS)}"
            )
    if holdout_days is not None and holdout_days < 1:
        raise InvalidInputError(f"holdout_days must be 1 or more, got {holdout_days}")
    if calibration_end is None:
        first = queries.first_purchase_day(wh, end)
        plan = plan_holdout(first, end, holdout_days or settings.holdout_days)
        if plan.calibration_end is None:
            raise MicrosegError(f"no holdout check possible: {plan.reason}")
        calibration_end = plan.calibration_end
    if calibration_end >= end:
        raise InvalidInputError(
            f"the calibration end ({calibration_end}) must be before the end of the holdout ({end})"
        )
    calibration = calibration_holdout(events, calibration_end, end, settings.period).to_pandas()
    if calibration.empty:
        raise MicrosegError(f"nobody bought by the calibration end {calibration_end}: nothing to check")
    repeat_days = repeat_transaction_days(events, calibration_end, end).to_pandas()
    return validate_models(
        calibration,
        repeat_days,
        calibration_end=calibration_end,
        observation_end=end,
        period=settings.period,
        models=names,
        penalizer=settings.penalizer,
    )

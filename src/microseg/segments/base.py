"""The per-customer table every segment layer starts from, computed by the engine.

One row per customer known on the as-of date: the profile, the customer's values (CLV,
P(alive), RFM), the lifecycle stage, the four tiers and the composite code, and ``customer``,
the customer's number (0, 1, ... in the order of their ids). Stages and tiers are engine
expressions (``LifecycleModel.expression``, ``models.tiers.tier_expressions``), so the same
table comes out of DuckDB and Spark; the run keeps it in the warehouse for the steps that
follow (stored profiles, memberships, rule segments) and reads it into memory once for the
clustered layers and the persona cards.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from microseg.config import SegmentConfig
from microseg.models.lifecycle import LifecycleModel
from microseg.models.rules import evaluate_rules, parse_rules
from microseg.models.tiers import tier_expressions

__all__ = [
    "SEGMENT_COLUMNS",
    "VALUE_COLUMNS",
    "lifecycle_model",
    "rule_members",
    "segment_base",
    "segment_columns",
    "tenure_names",
    "with_values",
]

#: Value columns the segmentation reads from ``customer_values``.
VALUE_COLUMNS = (
    "clv",
    "p_alive",
    "churn_risk",
    "expected_purchases",
    "expected_spend",
    "rfm_segment",
    "r_score",
    "f_score",
    "m_score",
)

#: The columns the base table adds to the profile and values: stage, tiers, composite code.
SEGMENT_COLUMNS = ("stage", "clv_tier", "rfm_tier", "tenure_tier", "engagement_tier", "composite_code")


def tenure_names(bounds) -> list[str]:
    """Names of the tenure tiers cut at ``bounds`` days.

    >>> tenure_names([90, 365, 730])
    ['0-3m', '3m-1y', '1y-2y', '2y+']
    """

    def span(days: int) -> str:
        return f"{days // 365}y" if days % 365 == 0 else f"{round(days / 30)}m"

    edges = [0, *bounds]
    names = [f"{span(a) if a else 0}-{span(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [*names, f"{span(bounds[-1])}+"]


def lifecycle_model(settings: SegmentConfig) -> LifecycleModel:
    """The lifecycle rules of ``settings``, not yet fitted."""
    return LifecycleModel(
        new_days=settings.new_days,
        reactivation_gap_days=settings.reactivation_gap_days,
        at_risk_lateness=settings.at_risk_lateness,
        churned_lateness=settings.churned_lateness,
        one_time_floor_days=settings.one_time_floor_days,
        at_risk_p_alive=settings.at_risk_p_alive,
        churned_p_alive=settings.churned_p_alive,
    )


def with_values(profile: ir.Table, values: ir.Table) -> ir.Table:
    """The profile with the customer's values (``VALUE_COLUMNS``, null for customers without
    values); ``values`` holds the rows of ``customer_values`` of the profile's date."""
    kept = values.select("customer_id", *VALUE_COLUMNS).rename(__value_customer="customer_id")
    return profile.left_join(kept, profile.customer_id == kept.__value_customer).drop("__value_customer")


def segment_columns(table: ir.Table, settings: SegmentConfig) -> ir.Table:
    """``table`` (profile and values) with the stage, tiers, composite code and customer number.
    The lifecycle model's typical rhythm is fitted on ``table`` by the engine (one median): keep
    ``table`` in the warehouse first when it is an expensive expression."""
    stage = lifecycle_model(settings).fit(table).expression(table)
    table = table.mutate(stage=stage).view()
    tiers = tier_expressions(
        table, settings.clv_tiers, settings.tenure_days, tenure_names(settings.tenure_days)
    )
    table = table.mutate(**tiers).view()
    number = ibis.row_number().over(order_by=table.customer_id)
    return table.mutate(customer=number)


def segment_base(profile: ir.Table, values: ir.Table, settings: SegmentConfig) -> ir.Table:
    """Profile, values (``VALUE_COLUMNS``, null for customers without values), stage, tiers,
    composite code and customer number of every customer of ``profile``
    (:func:`with_values`, then :func:`segment_columns`)."""
    return segment_columns(with_values(profile, values).view(), settings)


def rule_members(base: ir.Table, rules: Mapping[str, str]) -> ir.Table:
    """``customer, segment_id``: one row per customer of the base table per rule segment it
    satisfies, evaluated by the engine."""
    members = evaluate_rules(parse_rules(rules, base.schema()), base, id_column="customer")
    return members.select(customer=members.customer_id, segment_id=members.segment)

"""The names microseg segments by: lifecycle stages and segment layers, in one place.

Everything that lists stages or layers reads them from here: the segmentation, the CLI help and
its name checks, the ordering of matrices and reports, and the tests.

>>> [layer.name for layer in LAYERS.values() if layer.clustered]
['behaviour', 'demographic', 'micro']
>>> check_layer("lifecyle")
Traceback (most recent call last):
...
microseg.errors.InvalidInputError: no segment layer 'lifecyle' (did you mean "lifecycle"?); layers: lifecycle, clv_tier, rfm_tier, tenure_tier, engagement_tier, composite_code, composite, behaviour, demographic, micro, rule
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from microseg.errors import InvalidInputError

#: Lifecycle stages, in lifecycle order. ``returns_only`` customers have no purchase in the data,
#: only returns or cancellations of purchases made before it starts: buyers, not prospects.
STAGES: tuple[str, ...] = ("prospect", "new", "active", "at_risk", "churned", "reactivated", "returns_only")

#: A stage as a noun phrase (the stage's own segment label).
STAGE_NAMES: dict[str, str] = {
    "prospect": "Prospects",
    "new": "New customers",
    "active": "Active customers",
    "at_risk": "At-risk customers",
    "churned": "Churned customers",
    "reactivated": "Reactivated customers",
    "returns_only": "Returns-only customers",
}

#: A stage as the first word of a persona label ("Lapsing big-spending garden lovers").
STAGE_WORDS: dict[str, str] = {
    "prospect": "Prospective",
    "new": "New",
    "active": "Active",
    "at_risk": "Lapsing",
    "churned": "Lost",
    "reactivated": "Returning",
    "returns_only": "Returns-only",
}

#: Tier layers: every customer has one tier of each.
TIER_LAYERS: tuple[str, ...] = ("clv_tier", "rfm_tier", "tenure_tier", "engagement_tier")

#: Clustered layers and the letter of their segment ids (``active.b2``, ``d3``).
CLUSTER_LETTERS: dict[str, str] = {"behaviour": "b", "demographic": "d"}

#: Reading order of the tier segments (best first).
RFM_ORDER: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
)
ENGAGEMENT_ORDER: tuple[str, ...] = ("high", "medium", "low")


@dataclass(frozen=True)
class Layer:
    """One segment layer: its name, what it holds, whether every customer is in exactly one of
    its segments (``exclusive``) and whether its segments are learned clusters."""

    name: str
    description: str
    exclusive: bool = True
    clustered: bool = False


#: Every segment layer, in the order they are built and listed.
LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer("lifecycle", f"lifecycle stage: {', '.join(STAGES)}"),
        Layer("clv_tier", "CLV tier: top_1, top_5, top_20, rest"),
        Layer("rfm_tier", "named RFM segment: champions, loyal, at_risk, ..."),
        Layer("tenure_tier", "time since the first purchase: 0-3m, 3-12m, 1-2y, 2y+"),
        Layer("engagement_tier", "recent web, email and app activity: high, medium, low, none"),
        Layer("composite_code", "the four tiers joined: top_5/champions/1-2y/high"),
        Layer("composite", "named composites from [segments.composites]", exclusive=False),
        Layer("behaviour", "behavioural clusters within each stage", clustered=True),
        Layer(
            "demographic", "demographic clusters (age, gender, region, declared attributes)", clustered=True
        ),
        Layer("micro", "stage x behaviour x demographic: active.b2.d3", clustered=True),
        Layer("rule", "rule segments from [segments.rules]", exclusive=False),
    )
}
#: Layers where a customer can be in several segments (or none).
MULTI_LAYERS: tuple[str, ...] = tuple(name for name, layer in LAYERS.items() if not layer.exclusive)
#: Layers where every customer is in exactly one segment.
EXCLUSIVE_LAYERS: tuple[str, ...] = tuple(name for name, layer in LAYERS.items() if layer.exclusive)


def suggest(word: str, options) -> str:
    """`` (did you mean "x"?)`` for the closest of ``options``, or an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def check_layer(name: str) -> str:
    """``name`` when it is a segment layer, else an error with the closest name."""
    if name not in LAYERS:
        raise InvalidInputError(
            f"no segment layer {name!r}{suggest(name, LAYERS)}; layers: {', '.join(LAYERS)}"
        )
    return name


def layer_help() -> str:
    """The layers as the CLI lists them."""
    return ", ".join(LAYERS)


def segment_order(kind: str):
    """Sort key of a layer's segment ids: stages in lifecycle order, CLV tiers from the top, RFM
    and engagement tiers best first, tenure tiers shortest first, else by name; ``none`` and then
    pseudo-states such as ``(new)``, ``(gone)`` and ``(out)`` last."""
    order = {"lifecycle": STAGES, "rfm_tier": RFM_ORDER, "engagement_tier": ENGAGEMENT_ORDER}.get(kind, ())

    def key(name: object) -> tuple:
        name = str(name)
        if name.startswith("("):
            return (3, 0.0, name)
        if name == "none":
            return (2, 0.0, name)
        if name in order:
            return (0, float(order.index(name)), name)
        if kind == "clv_tier":
            if name.startswith("top_"):
                try:
                    return (0, float(name[4:]), name)
                except ValueError:
                    pass
            if name == "rest":
                return (0, 101.0, name)
        if kind == "tenure_tier":
            return (0, _tenure_days(name), name)
        return (1, 0.0, name)

    return key


def _tenure_days(name: str) -> float:
    """Lower bound in days of a tenure tier name (``0-3m``, ``3m-1y``, ``1y-2y``, ``2y+``)."""
    start = name.split("-")[0].rstrip("+")
    scale = 365.0 if start.endswith("y") else 30.0 if start.endswith("m") else 1.0
    try:
        return float(start.rstrip("ym")) * scale
    except ValueError:
        return float("inf")

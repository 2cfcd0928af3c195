"""Labels of demographic segments: who the people are, against all customers.

A label is a head noun, an age band and one trait, each only when it sets the segment apart:

* **head**: "Women" or "Men" when one gender is at least ``DOMINANT_GENDER`` of the segment,
  else "Customers";
* **age**: "in their 30s" (the members' mean age) when the mean age differs from everybody's by
  ``AGE_EFFECT`` standard deviations or more;
* **trait**: the most over-represented value of a place (region, country), an acquisition
  channel or a declared attribute: its share exceeds everybody's by ``TRAIT_LIFT``, or most of
  the segment holds a value most customers do not (share minus ``MAJORITY``), or
  ``NEARLY_ALL`` of the segment holds it but not everybody does: "in London", "from search
  ads", "with income band 50-75k"; or "outside United Kingdom" when at most ``OUTSIDE_SHARE``
  of the segment has the value that most customers have; or a numeric attribute that differs
  by ``AGE_EFFECT`` standard deviations ("with higher household size").

Values that read like source codes are left out; upper-case names are written in title case
(``microseg.segments.labels.readable_value``). Segments that would read alike get contrasts
(``contrast_labels``) on the same traits: shares (weighted like spend shares) and numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from microseg.features.layers import DEMOGRAPHIC_TRAITS
from microseg.segments.labels import SHARE_WEIGHT, contrast_labels, readable_value

DOMINANT_GENDER = 0.65
AGE_EFFECT = 0.5
TRAIT_LIFT = 0.2
MAJORITY = 0.6
OUTSIDE_SHARE = 0.1
NEARLY_ALL = 0.95
GENDER_WORDS = {"F": ("Women", "women"), "M": ("Men", "men")}
#: How customers came, by acquisition channel.
ACQUISITION_WORDS = {
    "paid_search": "from search ads",
    "organic_search": "from search",
    "organic": "from search",
    "referral": "by referral",
    "affiliate": "via affiliates",
    "store": "recruited in store",
    "email": "recruited by email",
    "social": "from social media",
}
PLACES = ("region", "country")


def demographic_labels(
    profile: pd.DataFrame, membership: pd.Categorical, attributes: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Segment id -> label of every demographic segment (``membership``: each customer's id, in
    the rows of ``profile``); ``attributes`` are the declared attributes by name."""
    attributes = {n: a for n, a in (attributes or {}).items() if n in profile.columns}
    codes = np.asarray(membership.codes)
    ids = [str(c) for c in membership.categories]
    traits = {c: c for c in DEMOGRAPHIC_TRAITS if c in profile.columns and c != "gender"}
    traits.update({n: n for n, a in attributes.items() if a.type != "numeric"})
    numbers = ["age"] if "age" in profile.columns else []
    numbers += [n for n, a in attributes.items() if a.type == "numeric"]

    shares = {t: _shares(profile[t], codes, len(ids)) for t in (*traits, "gender") if t in profile}
    means = {n: _means(profile[n], codes, len(ids)) for n in numbers}
    labels, effects = [], []
    for i in range(len(ids)):
        words, effect = _describe(i, shares, means, attributes)
        labels.append(words)
        effects.append(effect)
    return dict(zip(ids, contrast_labels(labels, effects, _phrase(attributes)), strict=True))


def _shares(values: pd.Series, codes: np.ndarray, k: int):
    """(segments x values shares, everybody's shares, value names) of a categorical trait."""
    text = values.astype(object).where(values.notna(), "unknown").astype(str).to_numpy()
    value_codes, names = pd.factorize(text, sort=True)
    table = np.bincount(codes * len(names) + value_codes, minlength=k * len(names)).reshape(k, len(names))
    sizes = np.maximum(table.sum(axis=1, keepdims=True), 1)
    base = table.sum(axis=0) / max(table.sum(), 1)
    return table / sizes, base, [str(n) for n in names]


def _means(values: pd.Series, codes: np.ndarray, k: int):
    """(segment means, everybody's mean, everybody's standard deviation) of a numeric trait."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(float)
    known = np.isfinite(numbers)
    sums = np.bincount(codes[known], weights=numbers[known], minlength=k)
    counts = np.bincount(codes[known], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    sd = float(np.nanstd(numbers)) if known.any() else np.nan
    return means, float(np.nanmean(numbers)) if known.any() else np.nan, sd


def _describe(i: int, shares, means, attributes) -> tuple[str, dict[str, float]]:
    """The label of segment ``i`` and its effect sizes against everybody."""
    effects: dict[str, float] = {}
    for trait, (table, base, names) in shares.items():
        for j, name in enumerate(names):
            effects[f"{trait}={name}"] = SHARE_WEIGHT * float(table[i, j] - base[j])
    for name, (segment, overall, sd) in means.items():
        if np.isfinite(segment[i]) and sd > 0:
            effects[name] = float((segment[i] - overall) / sd)

    head = "Customers"
    if "gender" in shares:
        table, _, names = shares["gender"]
        for j, name in enumerate(names):
            if name in GENDER_WORDS and table[i, j] >= DOMINANT_GENDER:
                head = GENDER_WORDS[name][0]
    words = [head]
    if "age" in means and abs(effects.get("age", 0.0)) >= AGE_EFFECT:
        words.append(f"in their {int(means['age'][0][i] // 10 * 10)}s")
    best: tuple[float, str] | None = None
    for trait, (table, base, names) in shares.items():
        if trait == "gender":
            continue
        for j, name in enumerate(names):
            share, overall = float(table[i, j]), float(base[j])
            strength, text = share - overall, _trait_words(trait, name, attributes)
            if overall < 0.5:  # most of the segment, though a minority of everybody
                strength = max(strength, share - MAJORITY)
            if share >= NEARLY_ALL > overall:  # all of the segment, though not everybody
                strength = max(strength, TRAIT_LIFT)
            if trait in PLACES and overall >= 0.5 and share <= OUTSIDE_SHARE:
                place = readable_value(name)
                strength, text = overall - share, f"outside {place}" if place else None
            if text and strength >= TRAIT_LIFT and (best is None or strength > best[0]):
                best = (strength, text)
    for name, attribute in attributes.items():
        if attribute.type == "numeric" and abs(effects.get(name, 0.0)) >= AGE_EFFECT:
            strength = abs(effects[name]) / 2
            text = attribute.phrase("higher" if effects[name] > 0 else "lower")
            if best is None or strength > best[0]:
                best = (strength, text)
    if best is not None:
        words.append(best[1])
    return " ".join(words), effects


def _trait_words(trait: str, value: str, attributes: Mapping[str, Any]) -> str | None:
    """How a label names one value of a trait ("in London", "from search ads"), or None."""
    if trait in PLACES:
        place = readable_value(value)
        return f"in {place}" if place else None
    if trait == "acquisition_channel":
        if value in ACQUISITION_WORDS:
            return ACQUISITION_WORDS[value]
        channel = readable_value(value)
        return f"acquired via {channel.lower()}" if channel else None
    attribute = attributes.get(trait)
    if attribute is None:
        return None
    shown = (
        readable_value(value) if attribute.type == "categorical" else (None if value == "unknown" else value)
    )
    return attribute.phrase(shown) if shown else None


def _phrase(attributes: Mapping[str, Any]):
    """Contrast phrases of the demographic traits."""

    def phrase(feature: str, higher: bool) -> str | None:
        if feature == "age":
            return "who are older" if higher else "who are younger"
        if feature in attributes:
            return attributes[feature].phrase("higher" if higher else "lower")
        trait, _, value = feature.partition("=")
        if trait == "gender":
            words = GENDER_WORDS.get(value)
            return None if words is None else f"with {'more' if higher else 'fewer'} {words[1]}"
        words = _trait_words(trait, value, attributes)
        if words is None:
            return None
        return f"more often {words}" if higher else f"less often {words}"

    return phrase

"""Words for labels: readable category names, and phrases that tell two look-alike segments apart.

Two rules keep labels honest:

* **Source codes stay out.** A category or trait value that looks like a code from the source
  system (``DRUG GM``, ``MEAT-PCKGD``, ``P0012``: a digit, or a word without a vowel) is never
  written into a label: a configured noun (``segments.category_nouns``) or a known one replaces
  it, or it is left out. Other upper-case names are written in lower case (categories: ``BAKERY``
  reads "bakery") or title case (places: ``EIRE`` reads "Eire"); acronyms of up to three letters
  (``USA``) stay.
* **No numerals.** When segments would read alike, each gets a *contrast*: the trait on which it
  differs most from the others of its group, in words ("with larger orders" against "with
  smaller orders", "in London", "older"). Traits are compared by their effect sizes against the
  same base: standardised mean differences for numbers, differences in proportion (weighted by
  ``SHARE_WEIGHT``) for shares. Only when no trait differs by ``MIN_CONTRAST`` is the group told
  apart by size ("a second group").

>>> looks_like_code("DRUG GM"), looks_like_code("meat-pckgd"), looks_like_code("garden")
(True, True, False)
>>> readable_value("EIRE"), readable_value("USA"), readable_value("P0012")
('Eire', 'USA', None)
>>> contrast_labels(["Fans", "Fans"], [{"orders": 1.0, "age": 0.1}, {"orders": -0.5, "age": 0.0}])
['Fans buying more often', 'Fans buying less often']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

#: Phrases of numeric profile features: (feature is higher, feature is lower).
NUMERIC_PHRASES: dict[str, tuple[str, str]] = {
    "orders": ("buying more often", "buying less often"),
    "revenue": ("spending more", "spending less"),
    "average_order_value": ("with larger orders", "with smaller orders"),
    "clv": ("of higher value", "of lower value"),
    "p_alive": ("more likely to stay", "less likely to stay"),
    "expected_purchases": ("expected to buy more", "expected to buy less"),
    "days_since_last_purchase": ("who bought longer ago", "who bought recently"),
    "days_since_first_purchase": ("of long standing", "who joined recently"),
    "rhythm_days": ("buying at longer intervals", "buying at shorter intervals"),
    "distinct_products": ("buying a wider range", "buying a narrower range"),
    "returned": ("returning more", "returning less"),
    "page_views_90d": ("browsing more", "browsing less"),
    "email_open_rate": ("opening more emails", "opening fewer emails"),
    "email_click_rate": ("clicking more emails", "clicking fewer emails"),
    "app_events_90d": ("using the app more", "using the app less"),
    "social_follows": ("following more on social", "following less on social"),
    "pos_share": ("buying more in store", "buying less in store"),
    "web_share": ("buying more online", "buying less online"),
    "app_share": ("buying more in the app", "buying less in the app"),
    "age": ("who are older", "who are younger"),
}
#: A difference in proportion counts this many times as much as a standardised mean difference.
SHARE_WEIGHT = 2.5
#: The weakest difference (in effect size) a contrast may rest on.
MIN_CONTRAST = 0.1
#: Words a contrast may add to a label.
MAX_CONTRAST_WORDS = 5
ORDINALS = ("a second", "a third", "a fourth", "a fifth", "a sixth", "a seventh", "an eighth", "a ninth")
#: Values that name no place, channel or category.
NO_VALUE = {"", "unknown", "other", "none", "unspecified", "n/a", "na", "nan", "null"}

_TOKENS = re.compile(r"[A-Za-z0-9]+")


def looks_like_code(name: object) -> bool:
    """Whether a category or trait value reads like a code of the source system rather than
    words: it holds a digit, or a word of two or more letters without a vowel."""
    text = str(name).strip()
    if not text or any(ch.isdigit() for ch in text):
        return True
    return any(len(t) >= 2 and not re.search(r"[aeiouyAEIOUY]", t) for t in _TOKENS.findall(text))


def readable_value(value: object) -> str | None:
    """A trait value as a label writes it (``EIRE`` -> ``Eire``; acronyms of up to three letters
    stay), or None when it names nothing or reads like a code."""
    text = str(value).strip().replace("_", " ")
    if text.casefold() in NO_VALUE:
        return None
    letters = _TOKENS.findall(text)
    if letters and all(t.isupper() for t in letters) and len(text) <= 3:
        return text  # an acronym
    if looks_like_code(text):
        return None
    if letters and all(t.isupper() for t in letters):
        return text.title()
    return text


def category_name(category: object) -> str | None:
    """A product category as words in a phrase ("garden", "frozen food"), or None when it reads
    like a code."""
    text = str(category).strip()
    if text.casefold() in NO_VALUE or looks_like_code(text):
        return None
    return text.replace("_", " ").lower()


def profile_phrase(feature: str, higher: bool) -> str | None:
    """The contrast phrase of a profile feature or a category share (``category:<name>``)."""
    if feature.startswith("category:"):
        name = category_name(feature.split(":", 1)[1])
        if name is None:
            return None
        return f"spending more on {name}" if higher else f"spending less on {name}"
    phrases = NUMERIC_PHRASES.get(feature)
    return None if phrases is None else phrases[0 if higher else 1]


def contrast_labels(
    labels: Sequence[str],
    effects: Sequence[Mapping[str, float]],
    phrase: Callable[[str, bool], str | None] = profile_phrase,
    fixed: Sequence[bool] | None = None,
) -> list[str]:
    """``labels`` made unique (case-insensitively) by contrasts within each group of equal
    labels; ``effects`` are every segment's effect sizes against the same base and ``phrase``
    gives the words of a feature's direction. Labels marked ``fixed`` (given names) stay and are
    never reused."""
    out = list(labels)
    fixed = list(fixed) if fixed is not None else [False] * len(out)
    taken = {label.casefold() for label, keep in zip(out, fixed, strict=True) if keep}
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(out):
        if not fixed[i]:
            groups.setdefault(label.casefold(), []).append(i)
    for key, members in groups.items():
        if len(members) == 1 and key not in taken:
            taken.add(key)
            continue
        for i, text in zip(
            members,
            _contrasted([out[i] for i in members], [effects[i] for i in members], phrase, taken),
            strict=True,
        ):
            out[i] = text
    return out


def _strength(feature: str, difference: float) -> float:
    """A difference of effect sizes on one scale: spend shares are differences in proportion."""
    return abs(difference) * (SHARE_WEIGHT if feature.startswith("category:") else 1.0)


def _contrasted(
    labels: list[str],
    effects: list[Mapping[str, float]],
    phrase: Callable[[str, bool], str | None],
    taken: set[str],
) -> list[str]:
    """Each label of a group of look-alikes with the trait that sets it apart from the others."""
    n = len(labels)
    features = sorted(set().union(*(e.keys() for e in effects)))
    result: list[str | None] = [None] * n
    order = range(n)  # the caller's order: the largest segment first
    for i in order:
        others = [j for j in range(n) if j != i]
        ranked = []
        for feature in features:
            mine = effects[i].get(feature, 0.0)
            rest = sum(effects[j].get(feature, 0.0) for j in others) / max(len(others), 1)
            difference = mine - rest
            if _strength(feature, difference) >= MIN_CONTRAST:
                ranked.append((-_strength(feature, difference), feature, difference))
        ranked.sort()
        for _, feature, difference in ranked:
            words = phrase(feature, difference > 0)
            if not words or len(words.split()) > MAX_CONTRAST_WORDS:
                continue
            text = f"{labels[i]} {words}"
            if text.casefold() not in taken:
                result[i] = text
                taken.add(text.casefold())
                break
    unnamed = [i for i in order if result[i] is None]
    for i in unnamed:
        # nothing sets it apart: told apart by size (the largest keeps the plain words)
        text = labels[i] if labels[i].casefold() not in taken else None
        position = 0
        while text is None or text.casefold() in taken:
            text = f"{labels[i]}, {ORDINALS[position] if position < len(ORDINALS) else 'another'} group"
            position += 1
            if position > len(ORDINALS) + 1:
                break
        result[i] = text
        taken.add(text.casefold())
    return [r if r is not None else labels[i] for i, r in enumerate(result)]

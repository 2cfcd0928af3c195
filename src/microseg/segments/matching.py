"""Segment id matching across refits of a clustering model.

A clustering model numbers its clusters arbitrarily and numbers them again when it is refitted
(new seed, newer data). :func:`match_segments` maps the clusters of a new run onto the segments
of the previous run, so that a segment that is essentially the same keeps its id and name, and it
reports what happened to every segment: ``kept``, ``merged``, ``split``, ``new`` or ``vanished``.

Quantities
----------
For a previous segment ``i`` and a new cluster ``j``:

* *shared customers*: members of a previous segment that carry a cluster label in the new run
  (customers who left, joined or are unassigned in the new run, label < 0, do not count);
* ``C[i, j]``: shared customers of ``i`` now in ``j``; ``a[i] = sum_j C[i, j]`` and
  ``b[j] = sum_i C[i, j]``;
* *overlap* ``O[i, j] = C[i, j] / min(a[i], b[j])``, the overlap coefficient on shared customers.
  It is symmetric and is 1 when the smaller of the two lies wholly inside the other, so it is high
  for a continuation and also for each part of a split and each part of a merge (Jaccard would
  call a part of a three-way split a weak match);
* *distance* ``d[i, j]``: Euclidean distance between the centroids, which live in a standardised
  feature space shared between runs.

Rule
----
1. **Evidence.** ``i`` is *traceable* when ``a[i] >= min_shared`` (default 30) or when at
   least half of its members are shared (so small segments count too), and ``a[i] > 0``;
   likewise ``j`` with ``b[j]`` and its size. A pair of traceable segments is judged on
   membership, a pair of untraceable ones (e.g. a lifecycle stage that turned over, or a new
   population) on centroid distance; a mixed pair never matches.
2. **Links.** A traceable pair is *linked* when ``O[i, j] >= min_overlap`` (default 0.5): the
   shared customers of one of the two are mostly in the other. The *strongest link* of a segment
   is its link with the most shared customers; ties go to the nearer centroid, then to the first
   segment in the canonical order (below).
3. **Candidates to keep an id.**

   * membership: a link ``(i, j)`` that is the strongest for both ``i`` and ``j`` (count ties
     kept). So in a split the part with most of the old segment's customers keeps the id, and in
     a merge the old segment contributing most customers gives its id; an old segment whose
     strongest link went to a stronger partner does not live on in a small remnant;
   * centroid: an untraceable pair with ``d[i, j] < gate[i, j]``. ``gate = max_distance`` when
     given; otherwise ``gate[i, j] = 0.5 * min(s[i], t[j])`` with ``s[i]`` the distance from old
     centroid ``i`` to the nearest other old centroid and ``t[j]`` the same among the new
     centroids (infinite when there is no other), so a centroid has at most one partner: the new
     one must be nearer to it than half-way to any neighbour.
4. **Assignment.** :func:`scipy.optimize.linear_sum_assignment` over all pairs minimises the sum
   of ``-C[i, j] / N + delta * d / (1 + d)`` on membership candidates (``N`` = all shared
   customers, ``delta`` small enough that centroid distance only breaks ties in shared
   customers), ``-(1 - d / gate)`` on centroid candidates and 0 elsewhere. Each candidate pair
   it picks keeps the old id on the new cluster: ``kept``.
5. **Leftovers.** An old segment not kept is ``merged`` into the cluster of its strongest link
   (which kept another id or got a new one), or ``vanished`` when it has no link and no centroid
   partner. A new cluster not kept gets a new id and is ``split`` from the old segment of its
   strongest link, or ``new`` when it has none. No (old, new) pair takes part in two events.
6. **New ids** are ``f"{prefix}{n}"``, ``n`` counting up from one more than the largest number
   used with that prefix by the previous segments and ``retired_ids`` (ids are never reused:
   store :attr:`Matching.retired_ids` with the states). On a first run they are ``prefix0`` ...
7. **Order and determinism.** Previous segments are ordered by id (natural order: ``s2 < s10``),
   new clusters canonically by size (descending), then centroid (lexicographic), then smallest
   member id; new ids are handed out in the canonical order. Nothing depends on the label
   numbers, the order of customers or the order of the previous states.

Clusters without customers get no id (``None``) and are not stored; customers with a negative
label are unassigned (noise) and belong to no segment.

>>> first = match_segments([], ["a", "b", "c"], [0, 0, 1], [[0.0], [5.0]], prefix="s")
>>> list(first.segment_ids)
['s0', 's1']
>>> again = match_segments(first.states, ["a", "b", "c", "d"], [1, 1, 0, 0], [[5.0], [0.0]], prefix="s")
>>> list(again.segment_ids), list(again.events["event"])
(['s1', 's0'], ['kept', 'kept'])
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from microseg.errors import InvalidInputError

__all__ = ["EVENTS", "EVENT_COLUMNS", "ClusterResult", "Matching", "SegmentState", "match_segments"]

#: Event kinds, in the order events are listed.
EVENTS = ("kept", "merged", "split", "new", "vanished")
#: Columns of :attr:`Matching.events`.
EVENT_COLUMNS = ("event", "old_id", "new_id", "label", "basis", "shared", "overlap", "distance")
#: Share of the nearest-neighbour distance within which a centroid match is allowed (step 3).
CENTROID_GATE = 0.5


def _as_ids(values: Any, what: str) -> np.ndarray:
    """A 1-d numpy unicode array of customer ids (strings or integers; no missing values)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.array([], dtype="U1")
    kind = arr.dtype.kind
    if kind == "U":
        return arr
    if kind in "OT":
        if pd.isna(arr).any():
            raise InvalidInputError(f"{what} must not contain missing values")
        return arr.astype(str)
    if kind in "iu":
        return arr.astype(str)
    raise InvalidInputError(f"{what} must be strings, got dtype {arr.dtype}")


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _id_key(segment_id: str) -> tuple[str, int, str]:
    """Natural order of ids: ``s2`` before ``s10``."""
    m = re.fullmatch(r"(.*?)(\d+)", segment_id)
    return (m[1], int(m[2]), segment_id) if m else (segment_id, -1, segment_id)


@dataclass(frozen=True, eq=False)
class SegmentState:
    """What is stored of a segment between runs.

    ``centroid`` lives in the standardised feature space shared between runs; ``members`` are the
    customer ids (sorted on construction; duplicates are an error); ``size == len(members)``.
    Arrays are copied and read-only. Equality compares ids, names, sizes and array contents.
    """

    segment_id: str
    centroid: np.ndarray
    members: np.ndarray = field(repr=False)
    size: int
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.segment_id, str) or not self.segment_id:
            raise InvalidInputError(f"segment_id must be a non-empty string, got {self.segment_id!r}")
        what = f"segment {self.segment_id!r}"
        centroid = np.array(self.centroid, dtype=float)
        if centroid.ndim != 1 or centroid.size == 0 or not np.isfinite(centroid).all():
            raise InvalidInputError(f"{what}: centroid must be a non-empty 1-d vector of finite numbers")
        members = _as_ids(self.members, f"{what}: members")
        if members.size > 1 and not (members[1:] > members[:-1]).all():
            members = np.sort(members)
            dup = np.flatnonzero(members[1:] == members[:-1])
            if dup.size:
                raise InvalidInputError(f"{what}: customer {members[dup[0]]!r} is listed twice")
        else:
            members = members.copy()
        size = self.size
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size != members.size:
            raise InvalidInputError(
                f"{what}: size must be the number of members ({members.size}), got {size!r}"
            )
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidInputError(f"{what}: name must be a string or None, got {self.name!r}")
        object.__setattr__(self, "centroid", _frozen(centroid))
        object.__setattr__(self, "members", _frozen(members))
        object.__setattr__(self, "size", int(size))

    @classmethod
    def _trusted(
        cls, segment_id: str, centroid: np.ndarray, members: np.ndarray, name: str | None
    ) -> SegmentState:
        """A state from arrays known to be valid, sorted and owned here (no checks, no copies)."""
        state = object.__new__(cls)
        for key, value in (
            ("segment_id", segment_id),
            ("centroid", _frozen(np.array(centroid, dtype=float))),
            ("members", _frozen(members)),
            ("size", int(members.size)),
            ("name", name),
        ):
            object.__setattr__(state, key, value)
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmentState):
            return NotImplemented
        return (
            (self.segment_id, self.size, self.name) == (other.segment_id, other.size, other.name)
            and np.array_equal(self.centroid, other.centroid)
            and np.array_equal(self.members, other.members)
        )

    def __hash__(self) -> int:
        return hash((self.segment_id, self.size, self.name))


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """One clustering run: a label per customer and a centroid per label.

    ``labels[c]`` indexes ``centroids`` (row ``l`` is the centroid of label ``l``); a negative
    label leaves the customer unassigned. Arrays are copied and read-only.
    """

    customer_ids: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    centroids: np.ndarray

    def __post_init__(self) -> None:
        ids, labels, centroids = _run_arrays(self.customer_ids, self.labels, self.centroids)
        object.__setattr__(self, "customer_ids", _frozen(ids.copy()))
        object.__setattr__(self, "labels", _frozen(labels.copy()))
        object.__setattr__(self, "centroids", _frozen(centroids.copy()))

    def match(self, previous: Sequence[SegmentState], **options: Any) -> Matching:
        """:func:`match_segments` on this run."""
        return _match(previous, self.customer_ids, self.labels, self.centroids, **options)


def _run_arrays(customer_ids: Any, labels: Any, centroids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated arrays of a run (possibly the caller's own: never modified nor kept)."""
    ids = _as_ids(customer_ids, "customer_ids")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != ids.shape[0]:
        raise InvalidInputError(
            f"labels must be 1-d with one label per customer ({ids.size}), got shape {labels.shape}"
        )
    if labels.size == 0:
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise InvalidInputError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64, copy=False)
    centroids = np.asarray(centroids, dtype=float)
    if centroids.ndim != 2 or centroids.shape[1] == 0:
        raise InvalidInputError(
            f"centroids must be a 2-d array (labels x features), got shape {centroids.shape}"
        )
    if not np.isfinite(centroids).all():
        raise InvalidInputError("centroids must be finite")
    if labels.size and labels.max() >= centroids.shape[0]:
        raise InvalidInputError(f"label {labels.max()} has no centroid (there are {centroids.shape[0]})")
    return ids, labels, centroids


@dataclass(frozen=True, eq=False)
class Matching:
    """The outcome of :func:`match_segments`.

    * ``segment_ids``: object array, the segment id of each new label (``None`` for a label
      without customers), so ``segment_ids[labels]`` gives each customer's id;
    * ``events``: one row per event, columns :data:`EVENT_COLUMNS`: ``event`` (one of
      :data:`EVENTS`), ``old_id`` and ``new_id`` (``kept``: both the same id; ``merged``: the old
      segment and the id of the new segment it went into; ``split``: the old segment and the new
      id split from it; ``new`` and ``vanished``: one side only), ``label`` (new label),
      ``basis`` (``members`` or ``centroid``: the evidence the decision rests on; missing when
      the other run has no segments, as on a first run), ``shared``,
      ``overlap`` and ``distance`` of the pair (missing for ``new`` and ``vanished``);
    * ``states``: the new segments to store for the next run, in id order;
    * ``retired_ids``: the given retired ids plus the previous ids not kept (store these too);
    * ``shared``: customers shared by each previous segment (rows) and new segment (columns).
    """

    segment_ids: np.ndarray
    events: pd.DataFrame
    states: tuple[SegmentState, ...]
    retired_ids: tuple[str, ...]
    shared: pd.DataFrame

    def segment_of(self, labels: Any) -> np.ndarray:
        """Each customer's segment id from their labels (``None`` where the label is negative)."""
        labels = np.asarray(labels, dtype=np.int64)
        out = np.full(labels.shape, None, dtype=object)
        assigned = labels >= 0
        out[assigned] = self.segment_ids[labels[assigned]]
        return out


def match_segments(
    previous: Sequence[SegmentState],
    customer_ids: Any,
    labels: Any,
    centroids: Any,
    *,
    prefix: str,
    min_overlap: float = 0.5,
    min_shared: int = 30,
    max_distance: float | None = None,
    retired_ids: Iterable[str] = (),
) -> Matching:
    """Give the clusters of a new run the ids of the previous segments they continue.

    ``customer_ids`` (unique strings), ``labels`` (an integer per customer; negative:
    unassigned) and ``centroids`` (one row per label, in the standardised feature space of the
    previous centroids) describe the new run; ``previous`` are the stored states of the last run
    (empty on a first run). The rule and its thresholds (``min_overlap``, ``min_shared``,
    ``max_distance``) are described in the module docstring. ``retired_ids`` are ids used before
    and never to be handed out again. Raises ``InvalidInputError`` on duplicate customer ids, a customer
    in two previous segments, labels without a centroid or centroids of another dimension.

    Cost: one sort of the new run's ids (skipped when they come sorted) and one merge of those
    with the previous members; the rest works on (segments x clusters) tables.
    """
    return _match(
        previous,
        *_run_arrays(customer_ids, labels, centroids),
        prefix=prefix,
        min_overlap=min_overlap,
        min_shared=min_shared,
        max_distance=max_distance,
        retired_ids=retired_ids,
    )


def _match(
    previous: Sequence[SegmentState],
    customer_ids: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray,
    *,
    prefix: str,
    min_overlap: float = 0.5,
    min_shared: int = 30,
    max_distance: float | None = None,
    retired_ids: Iterable[str] = (),
) -> Matching:
    if not isinstance(prefix, str):
        raise InvalidInputError(f"prefix must be a string, got {prefix!r}")
    if isinstance(min_overlap, bool) or not isinstance(min_overlap, numbers.Real) or not 0 < min_overlap <= 1:
        raise InvalidInputError(f"min_overlap must be in (0, 1], got {min_overlap!r}")
    if isinstance(min_shared, bool) or not isinstance(min_shared, numbers.Integral) or min_shared < 1:
        raise InvalidInputError(f"min_shared must be an integer >= 1, got {min_shared!r}")
    if max_distance is not None and (
        isinstance(max_distance, bool) or not isinstance(max_distance, numbers.Real) or not max_distance > 0
    ):
        raise InvalidInputError(f"max_distance must be a positive number or None, got {max_distance!r}")
    retired = set(retired_ids)
    if not all(isinstance(r, str) for r in retired):
        raise InvalidInputError("retired_ids must be strings")
    n_features = centroids.shape[1]
    old = _previous(previous, retired, n_features)

    new = _NewRun(customer_ids, labels, centroids)
    m, kk = len(old), len(new.labels)
    shared = _contingency(old, new)
    a, b = shared.sum(axis=1), shared.sum(axis=0)
    old_sizes = np.array([s.size for s in old], dtype=np.int64)
    new_sizes = np.array([part.size for part in new.members], dtype=np.int64)
    traceable_old = (a > 0) & ((a >= min_shared) | (2 * a >= old_sizes))
    traceable_new = (b > 0) & ((b >= min_shared) | (2 * b >= new_sizes))
    smaller = np.minimum(a[:, None], b[None, :])
    overlap = np.divide(shared, smaller, out=np.zeros((m, kk)), where=smaller > 0)
    link = traceable_old[:, None] & traceable_new[None, :] & (shared > 0) & (overlap >= min_overlap)

    old_centroids = np.array([s.centroid for s in old]).reshape(m, n_features)
    dist = cdist(old_centroids, new.centroids) if m and kk else np.zeros((m, kk))

    # candidates (step 3)
    linked_shared = np.where(link, shared, -1)
    row_best = linked_shared.max(axis=1, initial=-1)
    col_best = linked_shared.max(axis=0, initial=-1)
    by_members = link & (shared == row_best[:, None]) & (shared == col_best[None, :])
    gate = _gate(old_centroids, new.centroids, max_distance)
    by_centroid = (~traceable_old)[:, None] & (~traceable_new)[None, :] & (dist < gate)

    # assignment (step 4)
    cost = np.zeros((m, kk))
    if by_members.any():
        total = max(int(shared.sum()), 1)
        delta = 1.0 / (total * (min(m, kk) + 1))
        cost = np.where(by_members, -shared / total + delta * dist / (1.0 + dist), cost)
    if by_centroid.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            cost = np.where(by_centroid, -(1.0 - dist / gate), cost)
    rows, cols = linear_sum_assignment(cost) if m and kk else (np.array([], int), np.array([], int))
    kept = {int(c): int(r) for r, c in zip(rows, cols, strict=True) if by_members[r, c] or by_centroid[r, c]}

    # ids (step 6)
    next_n = _next_number(prefix, [s.segment_id for s in old] + sorted(retired))
    new_ids: list[str] = []
    for c in range(kk):
        if c in kept:
            new_ids.append(old[kept[c]].segment_id)
        else:
            new_ids.append(f"{prefix}{next_n}")
            next_n += 1

    # events (steps 4 and 5)
    def strongest(candidates: np.ndarray, counts: np.ndarray, dists: np.ndarray) -> int:
        return int(min(candidates, key=lambda x: (-counts[x], dists[x], x)))

    def pair(event: str, r: int, c: int, basis: str) -> dict[str, Any]:
        return {
            "event": event,
            "old_id": old[r].segment_id,
            "new_id": new_ids[c],
            "label": int(new.labels[c]),
            "basis": basis,
            "shared": int(shared[r, c]),
            "overlap": float(overlap[r, c]),
            "distance": float(dist[r, c]),
        }

    def single(event: str, old_id: str | None, c: int | None, traceable: bool) -> dict[str, Any]:
        return {
            "event": event,
            "old_id": old_id,
            "new_id": None if c is None else new_ids[c],
            "label": None if c is None else int(new.labels[c]),
            # the evidence: membership, centroids, or nothing on the other side to compare with
            "basis": "members" if traceable else "centroid" if m and kk else None,
            "shared": None,
            "overlap": np.nan,
            "distance": np.nan,
        }

    events = [pair("kept", r, c, "members" if by_members[r, c] else "centroid") for c, r in kept.items()]
    kept_old = set(kept.values())
    for r in range(m):
        if r in kept_old:
            continue
        links = np.flatnonzero(link[r])
        if links.size:
            events.append(pair("merged", r, strongest(links, shared[r], dist[r]), "members"))
        else:
            events.append(single("vanished", old[r].segment_id, None, bool(traceable_old[r])))
    for c in range(kk):
        if c in kept:
            continue
        links = np.flatnonzero(link[:, c])
        if links.size:
            events.append(pair("split", strongest(links, shared[:, c], dist[:, c]), c, "members"))
        else:
            events.append(single("new", None, c, bool(traceable_new[c])))
    rank = {e: i for i, e in enumerate(EVENTS)}
    events.sort(
        key=lambda e: (
            rank[e["event"]],
            _id_key(e["new_id"]) if e["new_id"] is not None else ("", -1, ""),
            _id_key(e["old_id"]) if e["old_id"] is not None else ("", -1, ""),
        )
    )
    event_frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS)).astype(
        {"label": "Int64", "shared": "Int64", "overlap": float, "distance": float}
    )

    segment_ids = np.full(centroids.shape[0], None, dtype=object)
    segment_ids[new.labels] = new_ids
    states = tuple(
        sorted(
            (
                SegmentState._trusted(
                    new_ids[c], new.centroids[c], new.members[c], old[kept[c]].name if c in kept else None
                )
                for c in range(kk)
            ),
            key=lambda s: _id_key(s.segment_id),
        )
    )
    retired |= {old[r].segment_id for r in range(m) if r not in kept_old}
    shared_frame = pd.DataFrame(
        shared,
        index=pd.Index([s.segment_id for s in old], name="old_id", dtype=object),
        columns=pd.Index(new_ids, name="new_id", dtype=object),
    )
    shared_frame = shared_frame[sorted(new_ids, key=_id_key)]
    return Matching(
        segment_ids=_frozen(segment_ids),
        events=event_frame,
        states=states,
        retired_ids=tuple(sorted(retired, key=_id_key)),
        shared=shared_frame,
    )


def _previous(previous: Sequence[SegmentState], retired: set[str], n_features: int) -> list[SegmentState]:
    old = list(previous)
    for s in old:
        if not isinstance(s, SegmentState):
            raise InvalidInputError(f"previous must hold SegmentState objects, got {type(s).__name__}")
    old.sort(key=lambda s: _id_key(s.segment_id))
    ids = [s.segment_id for s in old]
    for x, y in zip(ids[:-1], ids[1:], strict=True):
        if x == y:
            raise InvalidInputError(f"previous segment id {x!r} appears twice")
    both = retired.intersection(ids)
    if both:
        raise InvalidInputError(f"segment id {min(both)!r} is both a previous segment and retired")
    for s in old:
        if s.centroid.size != n_features:
            raise InvalidInputError(
                f"segment {s.segment_id!r} has a centroid with {s.centroid.size} features, "
                f"the new centroids have {n_features}"
            )
    return old


class _NewRun:
    """The new run's customers sorted by id, grouped into its non-empty clusters.

    Clusters (columns) are in canonical order: size descending, centroid, smallest member id.
    """

    def __init__(self, ids: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> None:
        if ids.size > 1 and not (ids[1:] > ids[:-1]).all():
            order = np.argsort(ids, kind="stable")
            ids, labels = ids[order], labels[order]
            dup = np.flatnonzero(ids[1:] == ids[:-1])
            if dup.size:
                raise InvalidInputError(f"customer {ids[dup[0]]!r} appears twice in customer_ids")
        self.sorted_ids, self.sorted_labels = ids, labels
        assigned = np.flatnonzero(labels >= 0)
        k = centroids.shape[0]
        sizes = np.bincount(labels[assigned], minlength=k)
        grouped = ids[assigned[np.argsort(labels[assigned], kind="stable")]]  # by label, then id
        parts = np.split(grouped, np.cumsum(sizes)[:-1]) if k else []
        live = [int(label) for label in np.flatnonzero(sizes)]
        live.sort(key=lambda label: (-sizes[label], tuple(centroids[label]), parts[label][0]))
        self.labels = np.array(live, dtype=np.int64)
        self.members = [parts[label] for label in live]
        self.centroids = centroids[self.labels].reshape(len(live), centroids.shape[1])
        self.column_of_label = np.full(k, -1, dtype=np.int64)
        self.column_of_label[self.labels] = np.arange(len(live))


def _contingency(old: list[SegmentState], new: _NewRun) -> np.ndarray:
    """``C[i, j]``: customers of previous segment ``i`` in new cluster ``j``.

    The new run's sorted ids and the previous segments' sorted members are merged with one stable
    sort (sorted runs merge in near-linear time); each previous member then meets its namesake in
    the new run right before it. The pairs (segment, cluster) are counted with a bincount.
    """
    m, kk = len(old), len(new.labels)
    ids, labels = new.sorted_ids, new.sorted_labels
    if not m or not kk or not ids.size or not sum(s.size for s in old):
        return np.zeros((m, kk), dtype=np.int64)
    n = ids.size
    members = np.concatenate([s.members for s in old])
    codes = np.repeat(np.arange(m), [s.size for s in old])
    order = np.argsort(np.concatenate([ids, members]), kind="stable")  # equal ids: new run first
    is_new = order < n
    last_new = np.maximum.accumulate(np.where(is_new, np.arange(order.size), -1))
    at = np.flatnonzero(~is_new)
    member = order[at] - n  # previous members in id order
    member_ids = members[member]
    dup = np.flatnonzero(member_ids[1:] == member_ids[:-1])
    if dup.size:
        x = dup[0]
        raise InvalidInputError(
            f"customer {member_ids[x]!r} is in two previous segments: "
            f"{old[codes[member[x]]].segment_id!r} and {old[codes[member[x + 1]]].segment_id!r}"
        )
    candidate = last_new[at]  # sorted position of the nearest new-run id at or before each member
    before = candidate >= 0
    position = np.where(before, order[np.maximum(candidate, 0)], 0)  # index into ids
    label = np.where(before & (ids[position] == member_ids), labels[position], -1)
    present = label >= 0
    cell = codes[member[present]] * kk + new.column_of_label[label[present]]
    return np.bincount(cell, minlength=m * kk).reshape(m, kk)


def _gate(old_centroids: np.ndarray, new_centroids: np.ndarray, max_distance: float | None) -> np.ndarray:
    """The distance below which an untraceable pair may match on centroids (step 3)."""
    m, kk = len(old_centroids), len(new_centroids)
    if max_distance is not None:
        return np.full((m, kk), float(max_distance))

    def nearest_other(points: np.ndarray) -> np.ndarray:
        if len(points) < 2:
            return np.full(len(points), np.inf)
        d = cdist(points, points)
        np.fill_diagonal(d, np.inf)
        return d.min(axis=1)

    return CENTROID_GATE * np.minimum(
        nearest_other(old_centroids)[:, None], nearest_other(new_centroids)[None, :]
    )


def _next_number(prefix: str, used: Iterable[str]) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    numbers_used = [int(m[1]) for sid in used if (m := pattern.fullmatch(sid))]
    return max(numbers_used, default=-1) + 1

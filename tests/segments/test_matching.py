"""Segment identities across refits: kept, merged, split, new and vanished segments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from microseg.segments.matching import (
    EVENT_COLUMNS,
    EVENTS,
    ClusterResult,
    Matching,
    SegmentState,
    match_segments,
)

CENTERS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0], [12.0, 0.0], [0.0, 12.0]])


def customer_ids(start: int, count: int, tag: str = "c") -> np.ndarray:
    return np.array([f"{tag}{i:06d}" for i in range(start, start + count)])


def clustered(sizes, rng, start: int = 0, tag: str = "c") -> tuple[np.ndarray, np.ndarray]:
    """Customer ids and a shuffled label per customer, ``sizes[l]`` customers with label ``l``."""
    ids = customer_ids(start, sum(sizes), tag)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    return ids, labels


def relabel(labels: np.ndarray, centroids: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same clustering with label ``l`` renamed ``perm[l]`` (negative labels stay)."""
    return np.where(labels >= 0, perm[labels], -1), centroids[np.argsort(perm)]


def ids_by_label(matching: Matching, labels: np.ndarray) -> np.ndarray:
    return matching.segment_of(labels)


def events_of(matching: Matching) -> set[tuple]:
    ev = matching.events
    return {
        (e, None if pd.isna(o) else o, None if pd.isna(n) else n)
        for e, o, n in zip(ev["event"], ev["old_id"], ev["new_id"], strict=True)
    }


def state(matching: Matching, segment_id: str) -> SegmentState:
    (found,) = [s for s in matching.states if s.segment_id == segment_id]
    return found


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def first(rng):
    """Four segments: label 0 (100), 1 (400), 2 (300), 3 (200)."""
    ids, labels = clustered([100, 400, 300, 200], rng)
    return ids, labels, match_segments([], ids, labels, CENTERS[:4], prefix="s")


# first run ------------------------------------------------------------------------------------


def test_first_run_numbers_segments_by_size(first):
    ids, labels, m = first
    assert list(m.segment_ids) == ["s3", "s0", "s1", "s2"]
    assert [(s.segment_id, s.size) for s in m.states] == [("s0", 400), ("s1", 300), ("s2", 200), ("s3", 100)]
    assert set(m.events["event"]) == {"new"} and list(m.events["new_id"]) == ["s0", "s1", "s2", "s3"]
    assert m.events["basis"].isna().all() and m.retired_ids == ()
    assert list(m.events.columns) == list(EVENT_COLUMNS)
    s0 = state(m, "s0")
    assert np.array_equal(s0.members, np.sort(ids[labels == 1]))
    assert np.array_equal(s0.centroid, CENTERS[1]) and s0.name is None
    assert m.shared.shape == (0, 4)


def test_first_run_breaks_size_ties_by_centroid(rng):
    ids, labels = clustered([50, 50, 50], rng)
    m = match_segments([], ids, labels, [[5.0, 0.0], [0.0, 5.0], [0.0, 0.0]], prefix="b")
    assert list(m.segment_ids) == ["b2", "b1", "b0"]


def test_segment_of_gives_each_customer_an_id(first):
    _, labels, m = first
    with_noise = np.where(np.arange(labels.size) % 7 == 0, -1, labels)
    out = m.segment_of(with_noise)
    assert out[0] is None and out[1] == m.segment_ids[labels[1]]


# stable ids -----------------------------------------------------------------------------------


def test_relabelled_identical_clustering_keeps_every_id(first, rng):
    ids, labels, m = first
    perm = np.array([2, 0, 3, 1])
    new_labels, new_centroids = relabel(labels, CENTERS[:4], perm)
    order = rng.permutation(ids.size)  # customer order does not matter either
    again = match_segments(m.states[::-1], ids[order], new_labels[order], new_centroids, prefix="s")
    assert np.array_equal(again.segment_of(new_labels), m.segment_of(labels))
    assert list(again.events["event"]) == ["kept"] * 4
    assert set(again.events["basis"]) == {"members"} and (again.events["overlap"] == 1).all()
    assert again.states == m.states and again.retired_ids == ()


def test_refit_with_a_few_percent_moved_keeps_ids(rng):
    ids, labels = clustered([900, 700, 500, 300, 200], rng)
    m = match_segments([], ids, labels, CENTERS[:5], prefix="s")
    moved = rng.random(ids.size) < 0.04
    refit = labels.copy()
    refit[moved] = rng.integers(0, 5, moved.sum())
    perm = rng.permutation(5)
    new_labels, new_centroids = relabel(refit, CENTERS[:5] + rng.normal(0, 0.1, (5, 2)), perm)
    again = match_segments(m.states, ids, new_labels, new_centroids, prefix="s")
    assert list(again.events["event"]) == ["kept"] * 5
    assert (again.segment_of(new_labels) == m.segment_of(labels)).mean() > 0.95
    assert again.shared.shape == (5, 5) and np.diag(again.shared.to_numpy()).min() > 150


def test_customers_joining_and_leaving_keep_ids(rng):
    ids, labels = clustered([600, 400, 300, 200], rng)
    m = match_segments([], ids, labels, CENTERS[:4], prefix="s")
    stay = rng.random(ids.size) > 0.25
    joined_ids, joined_labels = clustered([200, 150, 100, 50], rng, start=10_000)
    new_ids = np.concatenate([ids[stay], joined_ids])
    new_labels = np.concatenate([labels[stay], joined_labels])
    again = match_segments(m.states, new_ids, new_labels, CENTERS[:4] + 0.2, prefix="s")
    assert list(again.events["event"]) == ["kept"] * 4
    assert list(again.segment_ids) == list(m.segment_ids)
    assert state(again, "s0").size == (labels[stay] == 0).sum() + 200


def test_names_are_carried_over(first):
    ids, labels, m = first
    named = [dataclasses.replace(s, name=f"Segment {s.segment_id}") for s in m.states]
    again = match_segments(named, ids, labels, CENTERS[:4], prefix="s")
    assert [s.name for s in again.states] == ["Segment s0", "Segment s1", "Segment s2", "Segment s3"]


# merges, splits, new and vanished segments ----------------------------------------------------


def test_merge_keeps_the_id_of_the_largest_contributor(rng):
    ids, labels = clustered([600, 400, 500], rng)  # s0 = label 0, s2 = label 1, s1 = label 2
    m = match_segments([], ids, labels, CENTERS[:3], prefix="s")
    assert list(m.segment_ids) == ["s0", "s2", "s1"]
    merged = np.where(labels == 1, 0, labels)  # label 1 joins label 0
    merged = np.where(merged == 2, 1, merged)
    again = match_segments(m.states, ids, merged, [[2.0, 0.0], [0.0, 6.0]], prefix="s")
    assert list(again.segment_ids) == ["s0", "s1"]
    assert events_of(again) == {("kept", "s0", "s0"), ("kept", "s1", "s1"), ("merged", "s2", "s0")}
    row = again.events.set_index("event").loc["merged"]
    assert row["shared"] == 400 and row["overlap"] == 1.0 and row["basis"] == "members"
    assert again.retired_ids == ("s2",) and state(again, "s0").size == 1000


def test_split_keeps_the_id_on_the_largest_part(rng):
    ids, labels = clustered([1000, 500], rng)
    m = match_segments([], ids, labels, CENTERS[:2], prefix="s")
    in_a = np.flatnonzero(labels == 0)
    split = labels.copy()
    split[rng.choice(in_a, 400, replace=False)] = 2  # 600 stay, 400 form a new cluster
    again = match_segments(m.states, ids, split, [[0.0, 0.0], [6.0, 0.0], [0.0, -3.0]], prefix="s")
    assert list(again.segment_ids) == ["s0", "s1", "s2"]
    assert events_of(again) == {("kept", "s0", "s0"), ("kept", "s1", "s1"), ("split", "s0", "s2")}
    assert state(again, "s2").name is None and again.retired_ids == ()


def test_three_way_split_of_equal_parts_goes_to_the_nearest_centroid(rng):
    ids, labels = clustered([900], rng)
    m = match_segments([], ids, labels, [[0.0, 0.0]], prefix="s")
    split = np.arange(900) % 3
    again = match_segments(m.states, ids, split, [[3.0, 0.0], [0.5, 0.0], [0.0, 2.0]], prefix="s")
    assert list(again.segment_ids) == ["s2", "s0", "s1"]  # equal sizes: new ids in centroid order
    assert events_of(again) == {("kept", "s0", "s0"), ("split", "s0", "s1"), ("split", "s0", "s2")}


def test_an_old_segment_does_not_live_on_in_a_remnant(rng):
    """A: 10 % alone, 90 % together with all of B; B contributes more, A is merged into it."""
    ids, labels = clustered([1000, 1000], rng)  # equal sizes: s0 = label 0 at (0, 0), s1 = label 1
    m = match_segments([], ids, labels, CENTERS[:2], prefix="s")
    in_a = np.flatnonzero(labels == 0)
    new = np.ones_like(labels)
    new[in_a[:100]] = 0
    again = match_segments(m.states, ids, new, [[0.0, 1.0], [3.0, 0.0]], prefix="s")
    assert list(again.segment_ids) == ["s2", "s1"]
    assert events_of(again) == {("kept", "s1", "s1"), ("merged", "s0", "s1"), ("split", "s0", "s2")}
    assert again.retired_ids == ("s0",)


def test_dispersed_segment_vanishes(rng):
    ids, labels = clustered([500, 500, 500, 300], rng)
    m = match_segments([], ids, labels, CENTERS[:4], prefix="s")
    new = labels.copy()
    gone = np.flatnonzero(labels == 3)
    new[gone] = np.arange(gone.size) % 3  # spread evenly over the other three
    again = match_segments(m.states, ids, new, CENTERS[:4], prefix="s")
    assert events_of(again) >= {("vanished", "s3", None)}
    assert again.segment_ids[3] is None  # label 3 has no customers: no segment
    assert [s.segment_id for s in again.states] == ["s0", "s1", "s2"]
    assert again.events.set_index("event").loc["vanished", "basis"] == "members"


def test_vanished_id_is_never_reused(rng):
    ids, labels = clustered([500, 400, 300, 200], rng)
    m = match_segments([], ids, labels, CENTERS[:4], prefix="s")
    # the customers of s3 leave; newcomers form a cluster far away
    stay = labels != 3
    newcomers, _ = clustered([150], rng, start=50_000)
    ids2 = np.concatenate([ids[stay], newcomers])
    labels2 = np.concatenate([labels[stay], np.full(150, 3)])
    centroids2 = np.vstack([CENTERS[:3], [[30.0, 30.0]]])
    second = match_segments(m.states, ids2, labels2, centroids2, prefix="s")
    assert list(second.segment_ids) == ["s0", "s1", "s2", "s4"]
    assert ("vanished", "s3", None) in events_of(second) and ("new", None, "s4") in events_of(second)
    assert second.retired_ids == ("s3",)

    # s4 vanishes in turn; the next newcomer gets s5, never s3 or s4
    later, _ = clustered([150], rng, start=90_000)
    ids3 = np.concatenate([ids[stay], later])
    third = match_segments(
        second.states,
        ids3,
        labels2,
        np.vstack([CENTERS[:3], [[-30.0, 30.0]]]),
        prefix="s",
        retired_ids=second.retired_ids,
    )
    assert list(third.segment_ids) == ["s0", "s1", "s2", "s5"]
    assert third.retired_ids == ("s3", "s4")

    # retired ids count even when no state has that number any more
    fourth = match_segments(
        third.states[:3],
        ids3,
        labels2,
        np.vstack([CENTERS[:3], [[-30.0, -30.0]]]),
        prefix="s",
        retired_ids=("s9", "x12"),
    )
    assert fourth.segment_ids[3] == "s10"


def test_centroids_decide_when_no_customers_are_shared(rng):
    ids, labels = clustered([500, 400, 300, 200], rng)
    m = match_segments([], ids, labels, CENTERS[:4], prefix="s")  # s0..s3 at CENTERS[0..3]
    # a completely new population: three clusters where s0, s2, s3 were, one far away
    new_ids, new_labels = clustered([450, 350, 250, 220], rng, start=500_000, tag="n")
    centroids = np.array([[0.3, -0.2], [0.1, 6.2], [6.2, 5.9], [-20.0, 3.0]])
    again = match_segments(m.states, new_ids, new_labels, centroids, prefix="s")
    assert list(again.segment_ids) == ["s0", "s2", "s3", "s4"]
    assert events_of(again) == {
        ("kept", "s0", "s0"),
        ("kept", "s2", "s2"),
        ("kept", "s3", "s3"),
        ("new", None, "s4"),
        ("vanished", "s1", None),
    }
    kept = again.events[again.events["event"] == "kept"]
    assert set(kept["basis"]) == {"centroid"} and (kept["distance"] < 0.5).all()

    # the same in any label numbering
    perm = np.array([3, 1, 0, 2])
    relabelled = match_segments(m.states, new_ids, *relabel(new_labels, centroids, perm), prefix="s")
    assert list(relabelled.segment_ids[perm]) == list(again.segment_ids)


def test_a_stage_that_turned_over_matches_on_centroids(rng):
    """Only a handful of customers stayed: too few to trace, so centroids decide."""
    ids, labels = clustered([800, 600, 400], rng)
    m = match_segments([], ids, labels, CENTERS[:3], prefix="s")
    stayers = np.concatenate([np.flatnonzero(labels == g)[:10] for g in range(3)])
    fresh, fresh_labels = clustered([700, 500, 450], rng, start=700_000)
    new_ids = np.concatenate([ids[stayers], fresh])
    new_labels = np.concatenate([(labels[stayers] + 1) % 3, fresh_labels])  # stayers all moved on
    centroids = np.array([[0.2, 0.1], [5.8, 0.3], [0.1, 6.3]])
    again = match_segments(m.states, new_ids, new_labels, centroids, prefix="s")
    assert list(again.segment_ids) == ["s0", "s1", "s2"]
    assert set(again.events["basis"]) == {"centroid"}


def test_absolute_max_distance(rng):
    ids, labels = clustered([300, 200], rng)
    m = match_segments([], ids, labels, CENTERS[:2], prefix="s")
    new_ids, new_labels = clustered([300, 200], rng, start=10_000)
    far = CENTERS[:2] + [[0.0, 3.5]]  # the relative gate is half the spacing: 3
    assert list(match_segments(m.states, new_ids, new_labels, far, prefix="s").segment_ids) == ["s2", "s3"]
    near = match_segments(m.states, new_ids, new_labels, far, prefix="s", max_distance=4.0)
    assert list(near.segment_ids) == ["s0", "s1"]


# determinism and invariants -------------------------------------------------------------------


def random_refit(rng, previous_labels, k_old):
    """A refit with moved customers, leavers, joiners, merges and splits."""
    n = previous_labels.size
    mapping = rng.integers(0, k_old + 2, k_old)  # several old labels may map to one (merge)
    labels = mapping[previous_labels]
    splitting = rng.random(n) < rng.choice([0.0, 0.3])
    labels[splitting & (previous_labels == 0)] = k_old + 2  # part of label 0 splits off
    moved = rng.random(n) < 0.05
    labels[moved] = rng.integers(0, k_old + 3, moved.sum())
    labels[rng.random(n) < 0.02] = -1
    return labels


@pytest.mark.parametrize("seed", range(12))
def test_random_refits_are_deterministic_and_consistent(seed):
    rng = np.random.default_rng(seed)
    k_old = int(rng.integers(2, 6))
    ids, labels = clustered(list(rng.integers(40, 400, k_old)), rng)
    m = match_segments([], ids, labels, rng.normal(0, 3, (k_old, 3)), prefix="x", min_shared=20)
    keep = rng.random(ids.size) > rng.choice([0.0, 0.3, 0.97])
    joiners, _ = clustered([int(rng.integers(0, 300))], rng, start=100_000)
    new_ids = np.concatenate([ids[keep], joiners])
    new_labels = np.concatenate(
        [random_refit(rng, labels, k_old)[keep], rng.integers(0, k_old + 3, joiners.size)]
    )
    centroids = rng.normal(0, 3, (k_old + 3, 3))
    retired = ("x7",) if seed % 2 else ()
    kwargs = {"prefix": "x", "min_shared": 20, "retired_ids": retired}
    out = match_segments(m.states, new_ids, new_labels, centroids, **kwargs)

    # same inputs, same output; and neither label numbers nor any order matter
    again = match_segments(m.states, new_ids, new_labels, centroids, **kwargs)
    pd.testing.assert_frame_equal(out.events, again.events)
    perm = rng.permutation(k_old + 3)
    order = rng.permutation(new_ids.size)
    new_labels2, centroids2 = relabel(new_labels, centroids, perm)
    shuffled = match_segments(
        list(reversed(m.states)), new_ids[order], new_labels2[order], centroids2, **kwargs
    )
    assert list(shuffled.segment_ids[perm]) == list(out.segment_ids)
    assert shuffled.states == out.states and shuffled.retired_ids == out.retired_ids
    pd.testing.assert_frame_equal(
        shuffled.events.drop(columns="label"), out.events.drop(columns="label"), check_exact=True
    )
    pd.testing.assert_frame_equal(shuffled.shared, out.shared)

    # every old segment has one fate, every new segment one origin
    ev = out.events
    old_ids = [s.segment_id for s in m.states]
    fates = ev[ev["event"].isin(["kept", "merged", "vanished"])]["old_id"]
    assert sorted(fates) == sorted(old_ids)
    new_ids_out = [s.segment_id for s in out.states]
    origins = ev[ev["event"].isin(["kept", "split", "new"])]["new_id"]
    assert sorted(origins) == sorted(new_ids_out) and len(set(new_ids_out)) == len(new_ids_out)
    pairs = ev.dropna(subset=["old_id", "new_id"])
    assert not pairs.duplicated(["old_id", "new_id"]).any()
    assert set(ev["event"]) <= set(EVENTS)
    # fresh ids are above every id used before
    kept = set(ev.loc[ev["event"] == "kept", "new_id"])
    fresh = [int(i[1:]) for i in new_ids_out if i not in kept]
    assert all(f > max(len(old_ids) - 1, 7 if retired else -1) for f in fresh)
    assert set(out.retired_ids) == set(retired) | (set(old_ids) - kept)
    # states hold every assigned customer exactly once
    members = np.concatenate([s.members for s in out.states])
    assert members.size == (new_labels >= 0).sum() == np.unique(members).size


def test_cluster_result_matches_like_the_function(first):
    ids, labels, m = first
    result = ClusterResult(ids, labels, CENTERS[:4])
    via_result = result.match(m.states, prefix="s")
    assert list(via_result.segment_ids) == list(m.segment_ids)
    assert not result.labels.flags.writeable and result.customer_ids.dtype.kind == "U"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.labels = labels


# states and validation ------------------------------------------------------------------------


def test_segment_state_is_sorted_frozen_and_compares_by_value():
    s = SegmentState("s0", [1.0, 2.0], np.array(["b", "c", "a"], dtype=object), 3)
    assert list(s.members) == ["a", "b", "c"] and s.members.dtype.kind == "U"
    assert not s.members.flags.writeable and not s.centroid.flags.writeable
    assert s == SegmentState("s0", np.array([1.0, 2.0]), ["a", "b", "c"], 3)
    assert (
        s != dataclasses.replace(s, name="x")
        and len({s, SegmentState("s0", [1.0, 2.0], ["a", "b", "c"], 3)}) == 1
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.size = 4
    with pytest.raises(ValueError, match="size"):
        SegmentState("s0", [1.0], ["a"], 2)
    with pytest.raises(ValueError, match="twice"):
        SegmentState("s0", [1.0], ["b", "a", "b"], 3)
    with pytest.raises(ValueError, match="centroid"):
        SegmentState("s0", [np.nan], ["a"], 1)
    with pytest.raises(ValueError, match="missing"):
        SegmentState("s0", [1.0], np.array(["a", None], dtype=object), 2)


def test_invalid_inputs_are_rejected(first):
    ids, labels, m = first
    with pytest.raises(ValueError, match="appears twice"):
        match_segments(
            [], np.concatenate([ids, ids[:1]]), np.concatenate([labels, [0]]), CENTERS[:4], prefix="s"
        )
    with pytest.raises(ValueError, match="no centroid"):
        match_segments([], ids, labels, CENTERS[:3], prefix="s")
    with pytest.raises(ValueError, match="one label per customer"):
        match_segments([], ids, labels[:-1], CENTERS[:4], prefix="s")
    with pytest.raises(ValueError, match="integers"):
        match_segments([], ids, labels.astype(float), CENTERS[:4], prefix="s")
    with pytest.raises(ValueError, match="min_overlap"):
        match_segments([], ids, labels, CENTERS[:4], prefix="s", min_overlap=0)
    with pytest.raises(ValueError, match="min_shared"):
        match_segments([], ids, labels, CENTERS[:4], prefix="s", min_shared=0)
    with pytest.raises(ValueError, match="max_distance"):
        match_segments([], ids, labels, CENTERS[:4], prefix="s", max_distance=-1.0)
    with pytest.raises(ValueError, match="features"):
        match_segments(m.states, ids, labels, np.zeros((4, 3)), prefix="s")
    with pytest.raises(ValueError, match="both a previous segment and retired"):
        match_segments(m.states, ids, labels, CENTERS[:4], prefix="s", retired_ids=["s1"])
    with pytest.raises(ValueError, match="appears twice"):
        match_segments([m.states[0], m.states[0]], ids, labels, CENTERS[:4], prefix="s")
    overlapping = dataclasses.replace(
        m.states[1], members=np.append(m.states[1].members, m.states[0].members[0]), size=m.states[1].size + 1
    )
    with pytest.raises(ValueError, match="in two previous segments"):
        match_segments([m.states[0], overlapping], ids, labels, CENTERS[:4], prefix="s")


def test_noise_and_empty_runs(rng):
    ids, labels = clustered([200, 100], rng)
    noisy = np.where(np.arange(ids.size) % 10 == 0, -1, labels)
    m = match_segments([], ids, noisy, CENTERS[:2], prefix="s")
    assert sum(s.size for s in m.states) == (noisy >= 0).sum()
    nobody = match_segments(m.states, ids, np.full(ids.size, -1), CENTERS[:2], prefix="s")
    assert list(nobody.segment_ids) == [None, None] and nobody.states == ()
    assert set(nobody.events["event"]) == {"vanished"} and nobody.retired_ids == ("s0", "s1")
    empty = match_segments([], [], [], np.zeros((0, 2)), prefix="s")
    assert empty.states == () and empty.events.empty


# performance ----------------------------------------------------------------------------------


def test_a_million_unsorted_customers_and_twenty_segments_match():
    rng = np.random.default_rng(7)
    n, k = 1_000_000, 20
    ids = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 7))
    labels = rng.integers(0, k, n)
    centers = rng.normal(0, 4, (k, 6))
    first = match_segments([], ids, labels, centers, prefix="s")
    moved = rng.random(n) < 0.03
    refit = labels.copy()
    refit[moved] = rng.integers(0, k, moved.sum())
    perm = rng.permutation(k)
    new_labels, new_centroids = relabel(refit, centers + 0.05, perm)
    order = rng.permutation(n)  # unsorted ids: the slow path
    shuffled_ids, shuffled_labels = ids[order], new_labels[order]
    out = match_segments(first.states, shuffled_ids, shuffled_labels, new_centroids, prefix="s")
    assert list(out.events["event"]) == ["kept"] * k
    assert list(out.segment_ids[perm]) == list(first.segment_ids)

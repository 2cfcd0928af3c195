"""The clustering's own measures: the simplified silhouette and the grouped scaling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from microseg.models.clustering import SegmentClusterer, _scaling, simplified_silhouette


def _blobs(seed: int, width: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(rng.normal(0, 3, width), 1.0, (80, width)) for _ in range(3)])


def test_simplified_silhouette_follows_its_definition():
    z = _blobs(3)
    centers = np.array([z[:80].mean(axis=0), z[80:160].mean(axis=0), z[160:].mean(axis=0)])
    labels = np.repeat([0, 1, 2], 80)
    labels[::17] = (labels[::17] + 1) % 3  # some customers on the wrong side

    expected = []
    for row, own in zip(z, labels, strict=True):
        a = np.linalg.norm(row - centers[own])
        b = min(np.linalg.norm(row - c) for i, c in enumerate(centers) if i != own)
        expected.append((b - a) / max(a, b))
    assert simplified_silhouette(z, labels, centers) == pytest.approx(np.mean(expected), rel=1e-12)
    assert simplified_silhouette(centers, np.arange(3), centers) == 1.0  # every customer on its centre


def test_without_groups_the_scaling_is_scikit_learns_standard_scaler():
    X = _blobs(5)
    scaler = StandardScaler().fit(X)

    mean, scale = _scaling(X, None)
    assert mean == pytest.approx(scaler.mean_, rel=1e-12) and scale == pytest.approx(scaler.scale_, rel=1e-12)
    model = SegmentClusterer(random_state=0, n_init=2, k_max=4).fit(X)
    assert model.transform(X) == pytest.approx(scaler.transform(X), rel=1e-9, abs=1e-12)


def test_a_group_shares_one_scale_and_weights_divide_it():
    X = _blobs(7, width=5)
    variance = X.var(axis=0)

    _, scale = _scaling(X, ["a", "b", "a", None, "b"], weights=[1, 1, 2, 1, 1])
    together_a, together_b = np.sqrt(variance[[0, 2]].sum()), np.sqrt(variance[[1, 4]].sum())
    assert scale == pytest.approx([together_a, together_b, together_a / 2, np.sqrt(variance[3]), together_b])

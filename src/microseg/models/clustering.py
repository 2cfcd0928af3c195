"""Clustering for micro-segments: standardised features, k chosen by silhouette, k-means.

The number of clusters is chosen automatically: for each k in ``k_min..k_max`` k-means is fitted
on a sample of the customers and scored by the mean simplified silhouette (how much closer
customers are to their own cluster's centre than to the next centre) minus ``PARSIMONY`` per
cluster; the k with the best score wins (the smaller k on a tie). Everything is seeded by ``random_state``, so the same data gives the same
clusters. Cluster numbers are ordered by size (largest first), then by centroid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from microseg.models.base import Estimator, Interval

#: The silhouette a cluster must add to be worth having: with weak structure (customers with a
#: single purchase, say) the silhouette creeps up with k, and segments should stay few.
PARSIMONY = 0.01
#: Fewer customers than this are one cluster: too few to find structure.
MIN_CUSTOMERS = 30


class SegmentClusterer(Estimator):
    """k-means with automatic k. ``fit(X)`` then ``labels_``, ``k_``, ``cluster_centers_``
    (standardised), ``scores_`` (silhouette by k); ``predict(X)`` for new customers.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.3, (200, 2)) for c in ((0, 0), (4, 0), (0, 4))])
    >>> SegmentClusterer(random_state=1).fit(X).k_
    3
    """

    _constraints = {
        "k_min": Interval(1, None, integer=True),
        "k_max": Interval(1, None, integer=True),
        "sample_size": Interval(100, None, integer=True),
        "random_state": Interval(0, None, integer=True),
        "n_init": Interval(1, None, integer=True),
    }

    def __init__(
        self,
        k_min: int = 2,
        k_max: int = 8,
        sample_size: int = 10_000,
        random_state: int = 0,
        n_init: int = 4,
    ):
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.random_state = random_state
        self.n_init = n_init

    def fit(self, X) -> SegmentClusterer:
        # scikit-learn's k-means runs OpenMP threads; for data of this size their start-up and
        # spinning cost far more than they save (seventy times slower seen on two cores)
        with threadpool_limits(limits=1):
            return self._fit(X)

    def _fit(self, X) -> SegmentClusterer:
        self._validate_params()
        if self.k_max < self.k_min:
            raise ValueError(f"SegmentClusterer: k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        values = self._as_matrix(X)
        self.mean_ = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
        scale = values.std(axis=0) if len(values) else np.ones(values.shape[1])
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        z = self.transform(values)
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(len(z), size=min(len(z), self.sample_size), replace=False))
        zs = z[sample]
        self.scores_: dict[int, float] = {}
        distinct = len(np.unique(zs, axis=0)) if len(zs) else 0
        if len(z) < MIN_CUSTOMERS or self.k_max < 2 or distinct < 2:
            centers = zs.mean(axis=0, keepdims=True) if len(zs) else np.zeros((1, z.shape[1]))
            self.k_ = 1
        else:
            best = None
            for k in range(max(self.k_min, 2), min(self.k_max, len(zs) - 1, distinct) + 1):
                model = self._kmeans(k).fit(zs)
                if len(np.unique(model.labels_)) < 2:
                    continue
                score = simplified_silhouette(zs, model.labels_, model.cluster_centers_)
                self.scores_[k] = score
                penalised = score - PARSIMONY * k
                if best is None or penalised > best[0]:
                    best = (penalised, k, model.cluster_centers_)
            if best is None:
                centers, self.k_ = zs.mean(axis=0, keepdims=True), 1
            else:
                _, self.k_, centers = best
        self.cluster_centers_ = self._ordered(centers, z)
        self.labels_ = self._nearest(z)
        return self

    def _kmeans(self, k: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)

    def _ordered(self, centers: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Centers by cluster size (largest first), then lexicographically: stable numbering."""
        labels = _nearest(z, centers)
        sizes = np.bincount(labels, minlength=len(centers))
        keys = [(-int(sizes[i]), *np.round(centers[i], 6)) for i in range(len(centers))]
        order = sorted(range(len(centers)), key=lambda i: keys[i])
        return centers[order]

    def _as_matrix(self, X) -> np.ndarray:
        values = np.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X, dtype=float)
        if values.ndim != 2:
            raise ValueError(f"X must be a 2-D table of features, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            bad = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(
                f"X has a missing or infinite value (row {bad[0]}, column {bad[1]}): fill it first"
            )
        return values

    def transform(self, X) -> np.ndarray:
        """Features on the standardised scale the clusters live in."""
        return (self._as_matrix(X) - self.mean_) / self.scale_

    def _nearest(self, z: np.ndarray) -> np.ndarray:
        return _nearest(z, self.cluster_centers_)

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return self._nearest(self.transform(X))


def simplified_silhouette(z: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> float:
    """Mean of (b - a) / max(a, b), with a the distance to the own cluster's centre and b to the
    nearest other centre: the silhouette with centres for members (Hruschka et al., 2004), linear
    in the number of customers instead of quadratic."""
    d = np.sqrt(np.maximum(((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2), 0.0))
    rows = np.arange(len(z))
    a = d[rows, labels]
    d[rows, labels] = np.inf
    b = d.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(np.maximum(a, b) > 0, (b - a) / np.maximum(a, b), 0.0)
    return float(s.mean())


def _nearest(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center for each row (in chunks: bounded memory)."""
    out = np.empty(len(z), dtype=np.int64)
    norms = (centers**2).sum(axis=1)
    for start in range(0, len(z), 200_000):
        block = z[start : start + 200_000]
        out[start : start + len(block)] = np.argmin(norms[None, :] - 2 * block @ centers.T, axis=1)
    return out

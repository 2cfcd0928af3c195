"""Clustering for micro-segments: k-means whose k and partition do not depend on the seed.

Features are standardised (columns of one *group*, such as the indicators of one categorical
trait, share one scale: the root of the group's total variance, so that a trait with twelve
values weighs as much as one with two). Then, on a sample of the customers drawn from their ids
(the same customers whatever the seed, and from one snapshot to the next):

1. for each k in ``k_min..k_max``, ``n_seeds`` k-means fits with different seeds, each the best
   of ``n_init`` starts;
2. the *stability* of k is the median adjusted Rand index between pairs of these partitions: 1
   when most seeds find the same segments (the median rather than the mean, so that one fit
   stuck in a poor local optimum does not decide for the others);
3. the *medoid* fit (the one that agrees most with the others) stands for k, and its *quality*
   is its mean simplified silhouette (how much nearer customers are to their own centre than
   to the next one) minus ``PARSIMONY`` per cluster;
4. k is *admissible* when its stability reaches ``min_stability`` and every cluster of its
   medoid holds at least ``min_size`` customers (counted on all customers, not the sample);
5. the smallest admissible k whose quality is within ``SCORE_TOLERANCE`` of the best admissible
   quality wins. Near-ties go to the simpler partition, so the choice does not hang on the
   third decimal of a silhouette (which does move with the seed). When no k is admissible the
   customers are one segment: there is no structure that a seed would not change.

Every k gets its five fits: a single fit is not a reliable guess of a k's quality (one start in
ten can land in a poorer optimum), so no k is passed over on the strength of one.

Cluster numbers are ordered by size (largest first), then by centroid. A fitted model is kept as
a :class:`ClusterModel` (scaling and centres in raw feature units) so that later snapshots can
assign customers to the same centres.

What scikit-learn does here and what it cannot: the fits are its ``KMeans`` and the agreement
between them its ``adjusted_rand_score``. Its ``silhouette_score`` is the exact silhouette, which
compares every sampled customer with every other one: on a sample of 10,000 customers it took
about 9 s against 11 ms for the simplified silhouette used here (distances to the k centres
only, SciPy's ``cdist``), for each candidate k; the parsimony and tie tolerance above are set on
the simplified scale. Its ``StandardScaler`` scales each column by its own deviation, while
the scaling here gives the columns of one group one common scale and divides by the column
weights; the means and variances are two NumPy reductions, so there is nothing to gain from it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from microseg.errors import InvalidInputError
from microseg.models.base import Estimator, Interval

#: The silhouette a cluster must add to be worth having: with weak structure (customers with a
#: single purchase, say) the silhouette creeps up with k, and segments should stay few.
PARSIMONY = 0.01
#: Qualities this close to the best count as a tie, which the smaller k wins.
SCORE_TOLERANCE = 0.01
#: Fewer customers than this are one cluster: too few to find structure.
MIN_CUSTOMERS = 30


class SegmentClusterer(Estimator):
    """k-means with k chosen for quality and stability across seeds.

    ``fit(X, groups=None, keys=None, weights=None)`` then ``labels_``, ``k_``, ``cluster_centers_``
    (standardised), ``quality_`` (silhouette of the chosen partition), ``stability_`` (its median
    pairwise ARI across seeds), and per candidate k ``scores_`` (silhouette of the medoid),
    ``stabilities_`` and ``smallest_`` (its smallest cluster); ``predict(X)`` for new customers. ``groups`` names
    the group of each column (one scale per group, see the module docstring), ``weights`` their
    weights in the distances; ``keys`` (customer ids) choose the sample.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.3, (200, 2)) for c in ((0, 0), (4, 0), (0, 4))])
    >>> model = SegmentClusterer(random_state=1).fit(X)
    >>> model.k_, round(model.stability_, 2)
    (3, 1.0)
    """

    _constraints = {
        "k_min": Interval(1, None, integer=True),
        "k_max": Interval(1, None, integer=True),
        "sample_size": Interval(100, None, integer=True),
        "random_state": Interval(0, 2**32 - 1, integer=True),
        "n_init": Interval(1, None, integer=True),
        "n_seeds": Interval(2, None, integer=True),
        "min_stability": Interval(0, 1),
        "min_size": Interval(1, None, integer=True),
    }

    def __init__(
        self,
        k_min: int = 2,
        k_max: int = 8,
        sample_size: int = 10_000,
        random_state: int = 0,
        n_init: int = 10,
        n_seeds: int = 5,
        min_stability: float = 0.9,
        min_size: int = 1,
    ):
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.random_state = random_state
        self.n_init = n_init
        self.n_seeds = n_seeds
        self.min_stability = min_stability
        self.min_size = min_size

    def fit(
        self, X, groups: Sequence[str] | None = None, keys=None, weights: Sequence[float] | None = None
    ) -> SegmentClusterer:
        # scikit-learn's k-means runs OpenMP threads; for data of this size their start-up and
        # spinning cost far more than they save (seventy times slower seen on two cores)
        with threadpool_limits(limits=1):
            return self._fit(X, groups, keys, weights)

    def _fit(self, X, groups, keys, weights) -> SegmentClusterer:
        self._validate_params()
        if self.k_max < self.k_min:
            raise InvalidInputError(f"SegmentClusterer: k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        values = _as_matrix(X)
        self.mean_, self.scale_ = _scaling(values, groups, weights)
        z = (values - self.mean_) / self.scale_
        self.sample_ = sample_rows(len(z), self.sample_size, keys)
        zs = z[self.sample_]
        self.scores_: dict[int, float] = {}
        self.stabilities_: dict[int, float] = {}
        self.smallest_: dict[int, int] = {}
        distinct = len(np.unique(zs, axis=0)) if len(zs) else 0
        largest_k = min(self.k_max, len(zs) - 1, distinct, len(z) // self.min_size)
        best = None
        if len(z) >= MIN_CUSTOMERS and largest_k >= 2:
            seeds = np.random.default_rng(self.random_state).integers(0, 2**31 - 1, size=self.n_seeds)
            admissible: dict[int, tuple[float, np.ndarray]] = {}
            for k in range(max(self.k_min, 2), largest_k + 1):
                stability, labels, centers = self._ensemble(k, zs, seeds)
                if len(np.unique(labels)) < 2:
                    continue
                self.scores_[k] = simplified_silhouette(zs, labels, centers)
                self.stabilities_[k] = stability
                self.smallest_[k] = _smallest(z, centers)
                if stability >= self.min_stability and self.smallest_[k] >= self.min_size:
                    admissible[k] = (self.scores_[k] - PARSIMONY * k, centers)
            if admissible:
                top = max(score for score, _ in admissible.values())
                k = min(k for k, (score, _) in admissible.items() if score >= top - SCORE_TOLERANCE)
                best = (k, admissible[k][1])
        if best is None:
            centers = zs.mean(axis=0, keepdims=True) if len(zs) else np.zeros((1, z.shape[1]))
            self.k_, self.stability_ = 1, 1.0
        else:
            self.k_, centers = best
            self.stability_ = self.stabilities_[self.k_]
        self.cluster_centers_ = _ordered(centers, z)
        self.labels_ = _nearest(z, self.cluster_centers_)
        self.quality_ = (
            simplified_silhouette(zs, _nearest(zs, self.cluster_centers_), self.cluster_centers_)
            if self.k_ > 1
            else 0.0
        )
        return self

    def _kmeans(self, k: int, seed) -> KMeans:
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=int(seed))

    def _ensemble(self, k: int, zs: np.ndarray, seeds: np.ndarray):
        """(stability, labels and centres of the medoid) of the fits with each of ``seeds``."""
        fits = [self._kmeans(k, s).fit(zs) for s in seeds]
        labels = [fit.labels_ for fit in fits]
        agreement = np.eye(len(fits))
        for i, j in itertools.combinations(range(len(fits)), 2):
            agreement[i, j] = agreement[j, i] = adjusted_rand_score(labels[i], labels[j])
        # the median pair: one unlucky fit out of five does not sink a partition the others agree on
        stability = float(np.median(agreement[np.triu_indices(len(fits), 1)]))
        medoid = int(np.argmax(agreement.sum(axis=1)))  # the first on a tie
        return stability, labels[medoid], fits[medoid].cluster_centers_

    def transform(self, X) -> np.ndarray:
        """Features on the standardised scale the clusters live in."""
        self._check_fitted()
        return (_as_matrix(X) - self.mean_) / self.scale_

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return _nearest(self.transform(X), self.cluster_centers_)


@dataclass(frozen=True)
class ClusterModel:
    """A fitted clustering kept between snapshots: its feature columns, scaling and centres.

    Centres are kept in raw feature units (``centers``); customers are assigned to the nearest
    centre on the kept scale, so a customer whose features did not change stays in the same
    cluster however the rest of the population moves.

    >>> model = ClusterModel(("x",), np.array([0.0]), np.array([2.0]), np.array([[0.0], [10.0]]))
    >>> model.assign(np.array([[1.0], [7.0]])).tolist()
    [0, 1]
    """

    columns: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    centers: np.ndarray  # k x columns, raw units

    @classmethod
    def of(cls, clusterer: SegmentClusterer, columns: Sequence[str]) -> ClusterModel:
        """The model of a fitted :class:`SegmentClusterer`."""
        centers = clusterer.cluster_centers_ * clusterer.scale_ + clusterer.mean_
        return cls(tuple(columns), clusterer.mean_.copy(), clusterer.scale_.copy(), centers)

    @property
    def k(self) -> int:
        return len(self.centers)

    def standardised(self, X) -> np.ndarray:
        return (_as_matrix(X) - self.mean) / self.scale

    def assign(self, X) -> np.ndarray:
        """The cluster number of each row of ``X`` (columns in ``self.columns`` order)."""
        return _nearest(self.standardised(X), (self.centers - self.mean) / self.scale)

    def expression(self, features: Mapping[str, ir.Value]) -> ir.IntegerValue:
        """The nearest centre as an engine expression over ``features`` (column name ->
        expression, one per ``self.columns``): DuckDB and Spark assign every customer where the
        customers are, as :meth:`assign` does in memory (the first centre on a tie).

        >>> import ibis
        >>> model = ClusterModel(("x",), np.array([0.0]), np.array([2.0]), np.array([[0.0], [10.0]]))
        >>> t = ibis.memtable({"x": [1.0, 7.0, 5.0]})
        >>> t.select(c=model.expression({"x": t.x})).to_pandas()["c"].tolist()
        [0, 1, 0]
        """
        centers = (self.centers - self.mean) / self.scale
        z = [
            (features[c].cast("float64") - float(m)) / float(s)
            for c, m, s in zip(self.columns, self.mean, self.scale, strict=True)
        ]
        # as in memory: |c|^2 - 2 z.c, the |z|^2 every centre shares left out
        scores = []
        for center in centers:
            dot = z[0] * float(center[0])
            for zj, cj in zip(z[1:], center[1:], strict=True):
                dot = dot + zj * float(cj)
            scores.append(float((center**2).sum()) - 2.0 * dot)
        if len(scores) == 1:
            return ibis.literal(0, type="int64")
        cases = []
        for i, score in enumerate(scores[:-1]):
            beats = [score < other if j < i else score <= other for j, other in enumerate(scores) if j != i]
            cases.append((ibis.and_(*beats), i))
        return ibis.cases(*cases, else_=len(scores) - 1).cast("int64")

    def quality(self, X, rows: np.ndarray | None = None) -> float:
        """Mean simplified silhouette of ``X`` (or of its ``rows``) under the kept centres."""
        z = self.standardised(X)
        if rows is not None:
            z = z[rows]
        if self.k < 2 or not len(z):
            return 0.0
        centers = (self.centers - self.mean) / self.scale
        return simplified_silhouette(z, _nearest(z, centers), centers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "centers": self.centers.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterModel:
        columns = tuple(data["columns"])
        width = len(columns)
        centers = np.asarray(data["centers"], dtype=float).reshape(-1, width)
        return cls(columns, np.asarray(data["mean"], float), np.asarray(data["scale"], float), centers)


def sample_rows(n: int, size: int, keys=None) -> np.ndarray:
    """The rows (sorted) of a deterministic sample of ``size`` of ``n`` rows: those whose key
    (customer id; the row number without keys) hashes lowest. The same customers are drawn
    whatever the seed, and a customer stays drawn while the population changes around them.

    >>> sample_rows(5, 10).tolist()
    [0, 1, 2, 3, 4]
    >>> len(sample_rows(1000, 100, [f"C{i}" for i in range(1000)]))
    100
    """
    if n <= size:
        return np.arange(n)
    values = np.arange(n) if keys is None else np.asarray(keys, dtype=object)
    if len(values) != n:
        raise InvalidInputError(f"keys must give one key per row ({n}), got {len(values)}")
    hashes = pd.util.hash_array(values.astype(object) if values.dtype.kind != "O" else values)
    return np.sort(np.argsort(hashes, kind="stable")[:size])


def _as_matrix(X) -> np.ndarray:
    values = np.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X, dtype=float)
    if values.ndim != 2:
        raise InvalidInputError(f"X must be a 2-D table of features, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[0]
        raise InvalidInputError(
            f"X has a missing or infinite value (row {bad[0]}, column {bad[1]}): fill it first"
        )
    return values


def _scaling(
    values: np.ndarray, groups: Sequence[str] | None, weights: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Column means, and scales: each column's own standard deviation, or for the columns of one
    group the root of the group's total variance; divided by the column's weight (a column of
    weight 2 counts twice as much in the distances)."""
    width = values.shape[1]
    mean = values.mean(axis=0) if len(values) else np.zeros(width)
    variance = values.var(axis=0) if len(values) else np.ones(width)
    if groups is not None:
        groups = list(groups)
        if len(groups) != width:
            raise InvalidInputError(f"groups must name one group per column ({width}), got {len(groups)}")
        codes, _ = pd.factorize(np.asarray(groups, dtype=object), use_na_sentinel=False)
        variance = np.bincount(codes, weights=variance)[codes]  # each column gets its group's total
    scale = np.sqrt(variance)
    scale = np.where(scale > 1e-12, scale, 1.0)
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (width,) or not np.all(weights > 0):
            raise InvalidInputError(f"weights must be {width} positive numbers, one per column")
        scale = scale / weights
    return mean, scale


def _smallest(z: np.ndarray, centers: np.ndarray) -> int:
    """Customers of the smallest cluster when every row goes to its nearest centre."""
    return int(np.bincount(_nearest(z, centers), minlength=len(centers)).min())


def _ordered(centers: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Centers by cluster size (largest first), then lexicographically: stable numbering."""
    labels = _nearest(z, centers)
    sizes = np.bincount(labels, minlength=len(centers))
    keys = [(-int(sizes[i]), *np.round(centers[i], 6)) for i in range(len(centers))]
    order = sorted(range(len(centers)), key=lambda i: keys[i])
    return centers[order]


def simplified_silhouette(z: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> float:
    """Mean of (b - a) / max(a, b), with a the distance to the own cluster's centre and b to the
    nearest other centre: the silhouette with centres for members (Hruschka et al., 2004), linear
    in the number of customers instead of quadratic."""
    d = cdist(z, centers)
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

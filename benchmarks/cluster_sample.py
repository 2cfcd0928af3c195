"""Clustering sample size: do the segments change when the clusters are fitted on more customers?

The clustered layers (behaviour within each lifecycle stage, demographic over everyone) choose k
and fit their centres on a deterministic sample of each scope's customers
(``segments.sample_size``); every customer is then assigned to the nearest centre. This script
generates the demo data for N customers (default 200k) and imports it into a fresh project (or
reuses the project given with ``--project``), then runs the pipeline once per sample size (each
run fits its models afresh: the settings differ) and compares the assignments of all customers
with those of the largest sample:

* ARI: the adjusted Rand index between the two assignments (1: the same partition, whatever the
  segment ids), per behaviour scope (lifecycle stage) and for the demographic layer;
* k: the number of segments each scope chose;
* seconds: the ``segments`` step of the run (profile, every layer, cards and storage), in which
  the clustering is the part that grows with the sample.

Usage::

    python benchmarks/cluster_sample.py [--customers 200000] [--sizes 5000,10000,20000,50000]
                                        [--workdir DIR] [--project DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from segment_speed import build_project  # same folder: the same generated project
from sklearn.metrics import adjusted_rand_score

from microseg.project import Project

CLUSTERED = ("behaviour", "demographic")


def run_with_sample(project: Project, size: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(assignments: one row per customer, a column per layer; k per scope; seconds of the
    segments step) of a run whose clusters are fitted on samples of ``size``."""
    segments = dataclasses.replace(project.config.segments, sample_size=size)
    project.config = dataclasses.replace(project.config, segments=segments)
    result = project.run()
    members = project.memberships()
    members = members[members["kind"].isin(("lifecycle", *CLUSTERED))]
    table = members.pivot(index="customer_id", columns="kind", values="segment_id").sort_index()
    models = project.segment_models()
    k = models.set_index(["kind", "scope"])["k"]
    return table, k, result.steps["segments"]


def agreement(table: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """ARI with ``reference`` per behaviour scope (stage) and for the demographic layer."""
    reference = reference.reindex(table.index)
    scores = {}
    for stage, rows in reference.groupby("lifecycle").groups.items():
        scores[f"behaviour/{stage}"] = adjusted_rand_score(
            reference.loc[rows, "behaviour"], table.loc[rows, "behaviour"]
        )
    scores["demographic/all"] = adjusted_rand_score(reference["demographic"], table["demographic"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--sizes", default="5000,10000,20000,50000", help="sample sizes, comma separated")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--project", type=Path, default=None, help="reuse an imported project")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="microseg-bench-"))
    root = args.project or build_project(workdir, args.customers)
    runs = {}
    with Project(root) as project:
        for size in sizes:
            runs[size] = run_with_sample(project, size)
    reference, reference_k, _ = runs[sizes[-1]]
    stage_sizes = reference["lifecycle"].value_counts()
    print(f"customers: {len(reference):,}; reference: the sample of {sizes[-1]:,}")
    print("scope sizes: " + ", ".join(f"{stage} {n:,}" for stage, n in stage_sizes.items()))
    rows = []
    for size in sizes:
        table, k, seconds = runs[size]
        scores = agreement(table, reference)
        for scope, ari in scores.items():
            kind, name = scope.split("/")
            rows.append(
                {
                    "sample": size,
                    "scope": scope,
                    "ari": ari,
                    "k": int(k.get((kind, name), 0)),
                    "k_reference": int(reference_k.get((kind, name), 0)),
                }
            )
        print(
            f"sample {size:>7,}  segments step {seconds:7.1f} s  min ARI vs {sizes[-1]:,}: "
            f"{min(scores.values()):.3f}"
        )
    frame = pd.DataFrame(rows)
    print(frame.pivot(index="scope", columns="sample", values="ari").round(3).to_string())
    print("k per scope (sample size in columns):")
    print(frame.pivot(index="scope", columns="sample", values="k").to_string())
    print(f"smallest ARI of any sample against the largest: {frame['ari'].min():.3f}")
    if args.project is None and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

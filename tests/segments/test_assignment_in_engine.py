"""A kept clustering model assigns customers in the engine exactly as the run stored them.

The run of the demo shop stored, for its last snapshot, the model of every clustered scope (its
feature recipe, scaling and centres) and every customer's segment. Building the features from
the recipe as engine expressions and taking the nearest centre in DuckDB must give every
customer the segment the run gave them.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from microseg.features.asof import AsOf
from microseg.features.layers import behaviour_expressions, demographic_expressions
from microseg.features.profile import browsing_of, profile_of, spend_of
from microseg.project import Project
from microseg.segments.clustered import LayerModel


@pytest.fixture(scope="module")
def stored_run(demo_shop):
    with Project(demo_shop) as project:
        as_of = project.snapshots()["as_of"].max()
        as_of = pd.Timestamp(as_of).date()
        models = [LayerModel.from_row(r) for r in project.segment_models(as_of).to_dict("records")]
        memberships = project.memberships(as_of=as_of)
        yield project, as_of, models, memberships


def engine_segments(project: Project, as_of: dt.date, model: LayerModel) -> pd.Series:
    """Segment id by customer id, assigned in the warehouse by the model's expression."""
    events, customers, products = (project.warehouse.table(n) for n in ("events", "customers", "products"))
    settings = project.config.segments
    snapshot = AsOf(events, as_of, customers=customers, products=products, page_flags=settings.page_flags)
    profile = profile_of(snapshot, settings.reactivation_gap_days, settings.attributes)
    columns = list(model.model.columns)
    if model.kind == "behaviour":
        stages = project.warehouse.table("segment_memberships")
        stages = stages.filter(
            (stages.kind == "lifecycle") & (stages.as_of == as_of) & (stages.segment_id == model.scope)
        )
        profile = profile.semi_join(stages, "customer_id")
        features = behaviour_expressions(
            profile, spend_of(snapshot), browsing_of(snapshot), model.spec, columns
        )
    else:
        features = demographic_expressions(profile, settings.attributes, model.spec, columns, year=as_of.year)
    nearest = features.select("customer_id", centre=model.model.expression({c: features[c] for c in columns}))
    frame = nearest.to_pandas()
    ids = pd.Series(list(model.segment_ids))
    return pd.Series(ids[frame["centre"]].to_numpy(), index=frame["customer_id"].to_numpy())


def test_every_kept_model_assigns_in_the_engine_as_the_run_did(stored_run):
    project, as_of, models, memberships = stored_run
    assert {m.kind for m in models} == {"behaviour", "demographic"} and len(models) >= 5
    checked = 0
    for model in models:
        stored = memberships[memberships["kind"] == model.kind].set_index("customer_id")["segment_id"]
        assigned = engine_segments(project, as_of, model)
        assert len(assigned) > 0 and model.model.k == len(model.segment_ids)
        expected = stored.reindex(assigned.index)
        assert expected.notna().all()
        mismatched = assigned[assigned != expected]
        assert mismatched.empty, f"{model.kind} {model.scope}: {len(mismatched)} customers differ"
        checked += len(assigned)
    assert checked == 2 * memberships[memberships["kind"] == "lifecycle"].shape[0]

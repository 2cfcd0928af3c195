"""`microseg validate` and `Project.validate_clv` on the CDNOW sample, whose holdout facts are
published: 2,357 customers, calibration to week 39 (1997-09-30), 2,457 repeat transactions in
the calibration weeks, 1,882 in the holdout weeks 40-78, 4,339 in all."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from microseg.cli import main, state
from microseg.errors import InvalidInputError, MicrosegError
from microseg.project import Project
from tests.features.test_rfm import cdnow_events

pytestmark = pytest.mark.realdata

CALIBRATION_END = dt.date(1997, 9, 30)


CONFIG = """
[project]
name = "cdnow"
analysis_date = "1998-06-30"

[sources.orders]
path = "data/cdnow.csv"
event_type = "purchase"
"""


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    (root / "data").mkdir()
    cdnow_events()[["customer_id", "ts", "amount"]].to_csv(root / "data" / "cdnow.csv", index=False)
    (root / "microseg.toml").write_text(CONFIG)
    project = Project(root)
    project.import_sources()
    yield project
    project.close()


@pytest.fixture(scope="module")
def check(cdnow):
    return cdnow.validate_clv(calibration_end=CALIBRATION_END)


def test_the_published_holdout_facts(check):
    assert check.customers == 2_357
    assert check.calibration_weeks == 39 and len(check.tracking) == 78
    weeks = check.tracking.set_index("week")
    assert weeks.loc[39, "week_end"] == CALIBRATION_END and weeks.loc[78, "week_end"] == dt.date(1998, 6, 30)
    assert weeks.loc[39, "actual_cumulative"] == 2_457
    assert weeks.loc[78, "actual_cumulative"] == 4_339
    assert weeks.loc[40:, "actual"].sum() == 1_882
    assert (check.scores.actual == 1_882).all()


def test_models_fitted_on_the_calibration_period(check):
    bgnbd = check.models["bgnbd"].params_
    assert bgnbd.round(3).to_dict() == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    pareto = check.models["paretonbd"].params_
    assert pareto.round(3).to_dict() == {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    assert check.models["nbd"].params_.round(3).to_dict() == {"r": 0.385, "alpha": 12.072}
    scores = check.scores.set_index("model")
    # BG/NBD under-forecasts CDNOW's holdout by about 12% from the customers' histories
    assert scores.loc["bgnbd", "predicted"] == pytest.approx(1_653, abs=2)
    assert scores.loc["bgnbd", "total_error"] == pytest.approx(1_653 / 1_882 - 1, abs=0.002)


def test_the_nbd_over_predicts_a_holdout_with_dropout(check):
    """CDNOW customers leave; the NBD, where nobody does, expects 2,930 holdout transactions
    where 1,882 happened (+56%), and the holdout check keeps a model with dropout."""
    scores = check.scores.set_index("model")
    assert scores.loc["nbd", "predicted"] == pytest.approx(2_930, abs=2)
    assert scores.loc["nbd", "total_error"] == pytest.approx(0.557, abs=0.002)
    assert scores.loc["nbd", "rmse"] > scores.loc[["bgnbd", "paretonbd", "mbgnbd"], "rmse"].max()
    # at its maximum likelihood the NBD's conditional total is its cohort total (the α equation)
    assert scores.loc["nbd", "cohort_predicted"] == pytest.approx(scores.loc["nbd", "predicted"], rel=1e-6)
    assert check.chosen == "paretonbd"
    assert "dropout is identified on the calibration period, so the NBD (nobody leaves) is set aside" in (
        check.reason
    )


def test_table_by_calibration_frequency(check):
    table = check.by_frequency
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert list(table.columns) == ["customers", "actual", "BG/NBD", "Pareto/NBD", "MBG/NBD", "NBD"]
    assert table.customers.sum() == 2_357
    assert (table.actual * table.customers).sum() == pytest.approx(1_882)
    for label in ("BG/NBD", "Pareto/NBD", "MBG/NBD", "NBD"):
        assert table[label].is_monotonic_increasing  # more calibration purchases, more predicted
        model = check.scores.set_index("label").loc[label]
        assert (table[label] * table.customers).sum() == pytest.approx(model.predicted)


def test_tracking_adds_up_and_follows_the_actual_curve(check):
    weeks = check.tracking
    for label in ("BG/NBD", "Pareto/NBD", "MBG/NBD", "NBD"):
        assert weeks[label].sum() == pytest.approx(weeks[f"{label} cumulative"].iloc[-1])
        if label == "NBD":  # fits the calibration weeks, then overshoots: nobody leaves in it
            nbd = weeks.set_index("week")["NBD cumulative"]
            assert abs(nbd[39] / 2_457 - 1) < 0.01 and nbd[78] / 4_339 - 1 > 0.2
            continue
        # the cohort curve is within 10% of the actual cumulative count at the end of each part
        for week in (39, 78):
            expected = weeks.loc[weeks.week == week, f"{label} cumulative"].item()
            actual = weeks.loc[weeks.week == week, "actual_cumulative"].item()
            assert abs(expected / actual - 1) < 0.1, (label, week)
    assert (weeks.actual >= 0).all() and weeks.actual.sum() == 4_339


def test_html_page_is_offline(check, tmp_path):
    path = check.write_html(tmp_path / "page" / "check.html")
    text = path.read_text()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    ours = text.replace(get_plotlyjs(), "")  # the page without the library it inlines
    assert (
        get_plotlyjs() in text
        and not re.search(r"<script[^>]+src=", ours)
        and "http:" not in ours
        and "https:" not in ours
    )
    assert text.count('class="plotly-graph-div"') == 3
    assert "1,882 in the holdout weeks" in text


def test_validate_command(cdnow, capsys, tmp_path):
    state.debug = False
    out_csv = tmp_path / "table.csv"
    page = tmp_path / "check.html"
    code = main(
        [
            "-p",
            str(cdnow.root),
            "validate",
            "--calibration-end",
            "1997-09-30",
            "--model",
            "bgnbd",
            "--out",
            str(out_csv),
            "--html",
            str(page),
        ]
    )
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "Calibration to 1997-09-30 (weeks 1-39), holdout 273 days to 1998-06-30 (weeks 40-78)" in out
    assert (
        "Repeat transactions: 2,457 in the calibration weeks, 1,882 in the holdout weeks, 4,339 in all."
        in out
    )
    assert "BG/NBD: 1,653 holdout transactions predicted" in out
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["calibration frequency", "customers", "actual", "BG/NBD"]
    assert table["customers"].sum() == 2_357 and page.exists()


def test_default_split_and_errors(cdnow):
    default = cdnow.validate_clv()  # a third of the history at the end: 181 of 545 days
    assert default.observation_end == dt.date(1998, 6, 30)
    assert default.holdout_days == 181 and default.calibration_end == dt.date(1997, 12, 31)
    assert cdnow.validate_clv(holdout_days=273).calibration_end == CALIBRATION_END
    with pytest.raises(InvalidInputError, match='did you mean "bgnbd"'):
        cdnow.validate_clv(models=["bgndb"])
    with pytest.raises(InvalidInputError, match="must be before the end of the holdout"):
        cdnow.validate_clv(calibration_end=dt.date(1998, 6, 30))
    with pytest.raises(MicrosegError, match="nobody bought by the calibration end"):
        cdnow.validate_clv(calibration_end=dt.date(1996, 12, 1))
    state.debug = False
    assert (
        main(["-p", str(cdnow.root), "validate", "--calibration-end", "1997-09-30", "--holdout-days", "30"])
        == 1
    )

"""When the value models cannot be fitted, the run and `values` say so and why, instead of
counting everybody as valued and showing nan."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from microseg.cli import main, state
from microseg.project import Project


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    state.debug = False
    code = main(args)
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """400 demo customers: too few repeat buyers for BG/NBD, which does not settle on them."""
    root = tmp_path_factory.mktemp("clv-honesty")
    project = Project.create_demo(root, customers=400, seed=42)
    project.import_sources(["customers", "purchases"])
    project.close()
    return root


def _configured(root, model: str) -> Project:
    text = (root / "microseg.toml").read_text()
    text = text.split("\n[clv]")[0] + f'\n[clv]\nmodel = "{model}"\n'
    (root / "microseg.toml").write_text(text)
    return Project(root)


def test_run_says_nobody_has_a_clv_and_why(small_demo, capsys):
    with _configured(small_demo, "bgnbd") as project:
        result = project.run()
        values = project.customer_values()
    assert result.valued == len(values) > 300
    assert result.with_clv == 0 and result.value_model is None and result.dropout_identified is None
    (warning,) = [w for w in result.warnings if w.startswith("No customer has a CLV")]
    assert "BG/NBD could not be fitted: maximum likelihood does not settle" in warning
    assert warning.endswith("the lifecycle stages rely on each customer's buying rhythm only.")
    assert values[["p_alive", "expected_purchases", "clv"]].isna().all().all()
    code, out, err = run_cli(["-p", str(small_demo), "run"], capsys)
    assert code == 0
    assert (
        f"{result.customers:,} customers, {result.valued:,} with purchases, none with a CLV (see the warning)"
        in out
    )
    assert "Value model" not in out
    assert err.count("rely on each customer's buying rhythm only") == 1


def test_values_shows_not_available_with_the_reason(small_demo, capsys):
    with _configured(small_demo, "bgnbd") as project:
        project.run()
        reason = project.why_no_clv()
    assert reason.startswith("BG/NBD could not be fitted: maximum likelihood does not settle")
    code, out, _ = run_cli(["-p", str(small_demo), "values", "--top", "3"], capsys)
    assert code == 0
    assert "nan" not in out.lower().replace("-", " ").split()
    assert "(highest spend first)" in out
    assert f"P(alive), expected purchases and CLV: not available ({' '.join(reason.split())})" in out


def test_auto_finds_a_model_that_fits(small_demo, capsys):
    with _configured(small_demo, "auto") as project:
        result = project.run()
        models = project.value_models()
        assert project.why_no_clv() is None
    assert result.with_clv == result.valued and result.value_model is not None
    chosen = models.query("status == 'chosen'")
    assert chosen.reason.item() == result.value_model_reason
    bgnbd = models.query("model == 'BGNBD'")
    assert bgnbd.status.item() == "failed" and "does not settle" in bgnbd.reason.item()
    # BG/NBD finds dropout on the calibration period but cannot be fitted on all data: the models
    # are compared there, and MBG/NBD, which finds dropout on all data, comes before the NBD
    assert result.value_model == "MBG/NBD" and result.dropout_identified is True
    assert result.value_model_reason.startswith(
        "no holdout check (the models chosen on the holdout check cannot be used on all data: BG/NBD "
        "could not be fitted on all data); MBG/NBD finds dropout on all data"
    )
    code, out, _ = run_cli(["-p", str(small_demo), "values", "--top", "3"], capsys)
    assert code == 0 and "not available" not in out and "(highest CLV first)" in out


def test_one_time_buyers_only(tmp_path, capsys):
    """Nobody bought twice: no repeat-buying model can learn a buying rate."""
    root = tmp_path / "once"
    Project.init(root)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(120)], "ts": days, "amount": 10.0 + pd.Series(range(120))}
    ).to_csv(root / "data" / "orders.csv", index=False)
    with (root / "microseg.toml").open("a") as f:
        f.write('\n[sources.orders]\npath = "data/orders.csv"\nevent_type = "purchase"\n')
    with Project(root) as project:
        project.import_sources()
        result = project.run(dt.date(2024, 6, 30))
        models = project.value_models()
    assert result.with_clv == 0 and result.valued == 120
    (warning,) = [w for w in result.warnings if w.startswith("No customer has a CLV")]
    assert warning.startswith(
        "No customer has a CLV: no repeat-buying model could be fitted: BG/NBD: every customer"
    )
    assert "Pareto/NBD:" in warning and "MBG/NBD:" in warning
    assert (models.query("model != 'GammaGamma'").status == "failed").all()
    code, out, _ = run_cli(["-p", str(root), "values"], capsys)
    assert code == 0 and "not available (no repeat-buying model could be fitted" in out


def test_stage_rules_drop_p_alive_only_when_dropout_is_not_identified(small_demo):
    from microseg.pipeline import Pipeline, RunResult

    with Project(small_demo) as project:
        base = project.config.segments
        run = RunResult(dt.date(2025, 12, 31), "duckdb", 0, 0.0)
        for identified, expected in (
            (True, base.at_risk_p_alive),
            (None, base.at_risk_p_alive),
            (False, None),
        ):
            run.dropout_identified = identified
            settings = Pipeline(project.config, project.warehouse)._stage_settings(run)
            assert settings.at_risk_p_alive == expected and (settings.churned_p_alive is None) == (
                expected is None
            )
    assert base.at_risk_p_alive == 0.3  # the configured rules themselves are unchanged

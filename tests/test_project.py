"""Project: the entry point every front end uses."""

from __future__ import annotations

import datetime as dt

import pytest

from microseg import MicrosegError, Project
from microseg.errors import ConfigError

ORDERS = "customer_id,ts,order_id,amount\nc1,2024-01-05 10:00,o1,10\nc2,2024-02-01 09:00,o2,20\nc1,2024-02-03 12:00,o3,5\n"
CUSTOMERS = (
    "customer_id,email,country,signup_date\n"
    "c1,a@example.com,GB,2023-12-01\nc2,b@example.com,FR,2024-01-20\nc3,c@example.com,DE,2024-02-02\n"
)


@pytest.fixture
def project(tmp_path):
    project = Project.init(tmp_path / "shop")
    (project.root / "data" / "orders.csv").write_text(ORDERS)
    (project.root / "data" / "customers.csv").write_text(CUSTOMERS)
    with (project.root / "microseg.toml").open("a") as f:
        f.write('\n[sources.orders]\npath = "data/orders.csv"\nevent_type = "purchase"\n')
        f.write('\n[sources.crm]\npath = "data/customers.csv"\nkind = "customers"\n')
    project = Project(project.root)
    yield project
    project.close()


def test_new_project_is_empty_and_says_what_to_do(project):
    assert project.status() == dict.fromkeys(
        ("events", "customers", "products", "quarantine", "imports", "customer_summary", "customer_values"), 0
    )
    with pytest.raises(MicrosegError, match="run `microseg import` first"):
        project.run()
    with pytest.raises(MicrosegError, match="run `microseg run` first"):
        project.customer_summary()


def test_customers_are_imported_before_events(project):
    results = project.import_sources(["orders", "crm"])
    assert [r.source for r in results] == ["crm", "orders"]
    customers = project.warehouse.fetch_df("SELECT customer_id, country, source FROM customers ORDER BY 1")
    assert list(customers.country) == ["GB", "FR", "DE"]
    assert list(customers.source) == ["crm"] * 3  # events add no traits, so the CRM record stands


def test_run_uses_the_latest_event_day_or_the_given_date(project):
    project.import_sources()
    assert project.analysis_date() == dt.date(2024, 2, 3)
    result = project.run()
    assert (result.as_of, result.customers) == (dt.date(2024, 2, 3), 3)
    latest = project.customer_summary()
    assert list(latest.customer_id) == ["c1", "c2", "c3"] and list(latest.orders) == [2, 1, 0]
    # customers known on the date are included (c2 signed up, has not bought yet); later ones not
    assert project.run(dt.date(2024, 1, 31)).customers == 2
    assert project.run(dt.date(2024, 1, 10)).customers == 1
    # every snapshot is kept, each as of its own date
    early = project.customer_summary(dt.date(2024, 1, 31))
    assert list(early.customer_id) == ["c1", "c2"] and list(early.orders) == [1, 0]
    assert early.first_event_at.isna().tolist() == [False, True]


def test_configured_analysis_date_wins(project):
    text = (project.root / "microseg.toml").read_text()
    text = text.replace('# analysis_date = "2025-12-31"', 'analysis_date = "2024-01-31"')
    (project.root / "microseg.toml").write_text(text)
    with Project(project.root) as configured:
        assert configured.analysis_date() == dt.date(2024, 1, 31)


def test_unknown_source(project):
    with pytest.raises(ConfigError, match="sources.web: no such source"):
        project.import_sources(["web"])


def test_import_log_and_quarantine_views(project):
    (project.root / "data" / "orders.csv").write_text(ORDERS + "c4,not a date,o4,1\n")
    project.import_sources(["orders"])
    log = project.imports()
    assert list(log.rows_read) == [4] and list(log.quarantined) == [1]
    bad = project.quarantine()
    assert list(bad.row_number) == [4]
    assert bad.reason[0] == "ts: cannot read 'not a date' as a timestamp"

"""Fixtures of the dynamics tests: small report inputs and one headless Chromium per run."""

from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM = Path("/usr/bin/chromium")
STAGES = ("prospect", "new", "active", "at_risk", "churned", "reactivated")
SNAPSHOTS = (dt.date(2025, 4, 30), dt.date(2025, 5, 31), dt.date(2025, 6, 30))
MALICIOUS = "<script>alert(1)</script>"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: opens pages in headless Chromium (Playwright)")


def _unavailable(message: str) -> None:
    """Skip the test, except under CI=true where a missing browser is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true requires it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by Playwright, launched as STACK.md says."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("needs playwright: pip install playwright (never `playwright install`)")
    if not CHROMIUM.exists():
        _unavailable(f"needs Chromium at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@dataclass
class PageLog:
    """What a page did: requests blocked by the guard, every request, errors and dialogs."""

    blocked: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextmanager
def offline_report(chromium, path: Path):
    """Open a report file in a page that may load nothing but the file itself (any other request
    is blocked and logged), and wait until its three Plotly figures are drawn."""
    url = path.as_uri()
    log = PageLog()

    def only_the_file(route):
        if route.request.url == url or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            log.blocked.append(route.request.url)
            route.abort()

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.route("**/*", only_the_file)
        page.on("request", lambda request: log.requested.append(request.url))
        page.on(
            "console", lambda message: log.errors.append(message.text) if message.type == "error" else None
        )
        page.on("pageerror", lambda error: log.errors.append(str(error)))
        page.on("dialog", lambda dialog: (log.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        page.wait_for_selector(".js-plotly-plot .main-svg")
        page.wait_for_function(
            "() => { const plots = document.querySelectorAll('.plotly-graph-div');"
            " return plots.length === 3 && [...plots].every(p => p.querySelector('.main-svg')); }"
        )
        yield page, log
    finally:
        context.close()


def _flows() -> pd.DataFrame:
    """Transitions between the three snapshots: most customers stay, some move on."""
    moves = {
        "prospect": {"prospect": 50, "new": 30},
        "new": {"active": 25, "at_risk": 10, "new": 5},
        "active": {"active": 90, "at_risk": 20},
        "at_risk": {"at_risk": 15, "churned": 20, "reactivated": 5, "active": 4},
        "churned": {"churned": 40, "reactivated": 6},
        "reactivated": {"active": 8, "at_risk": 3},
    }
    rows = []
    for period, (start, end) in enumerate(zip(SNAPSHOTS, SNAPSHOTS[1:], strict=False)):
        for source, targets in moves.items():
            for target, n in targets.items():
                rows.append((start, end, source, target, n + 3 * period))
    return pd.DataFrame(rows, columns=["from_date", "to_date", "source", "target", "customers"])


@pytest.fixture
def report_inputs() -> dict:
    flows = _flows()
    sizes = [
        (day, stage, int(n))
        for day in SNAPSHOTS[:-1]
        for stage, n in flows[flows["from_date"] == day].groupby("source")["customers"].sum().items()
    ]
    last = flows[flows["to_date"] == SNAPSHOTS[-1]]
    sizes += [
        (SNAPSHOTS[-1], stage, int(n)) for stage, n in last.groupby("target")["customers"].sum().items()
    ]
    stage_sizes = pd.DataFrame(sizes, columns=["as_of", "segment", "customers"])
    matrix = (
        last.pivot_table(index="source", columns="target", values="customers", aggfunc="sum")
        .reindex(index=list(STAGES), columns=list(STAGES))
        .fillna(0)
        .astype(int)
    )
    card = {
        "top_categories": [["garden", 0.42], ["home", 0.21]],
        "distinguishing": [
            {
                "feature": "orders",
                "segment_mean": 6.2,
                "base_mean": 2.1,
                "effect_size": 1.4,
                "kind": "numeric",
            },
            {
                "feature": "category:garden",
                "segment_mean": 0.42,
                "base_mean": 0.12,
                "effect_size": 0.3,
                "kind": "category",
            },
        ],
        "stage_mix": {"active": 0.7, "new": 0.2, "at_risk": 0.1},
    }
    personas = pd.DataFrame(
        {
            "segment_id": ["c1", "c2", "c3"],
            "kind": ["cluster"] * 3,
            "label": ["Loyal garden lovers", MALICIOUS, "Lapsing tech buyers"],
            "size": [120, 80, 40],
            "share": [0.5, 1 / 3, 1 / 6],
            "revenue_share": [0.6, 0.3, 0.1],
            "mean_clv": [310.5, 120.0, 45.25],
            "card": [json.dumps(card), card, None],
        }
    )
    alerts = pd.DataFrame(
        [
            {
                "as_of": SNAPSHOTS[-1],
                "group": "all",
                "source": "active",
                "target": "at_risk",
                "rate": 0.2,
                "historical_rate": 0.08,
                "ratio": 2.5,
                "p_value": 0.0004,
                "p_adjusted": 0.004,
                "test": "binomial",
                "message": "active → at_risk rose to 20% (history 8%)",
            }
        ]
    )
    forecast = pd.DataFrame(
        {
            "segment": list(STAGES),
            "current": [53, 38, 127, 51, 66, 17],
            "forecast": [50, 41, 120, 58, 70, 15],
            "at_stake_clv": [0.0, 1200.0, 9800.5, 4100.0, 0.0, 600.0],
        }
    )
    return {
        "title": "Garden & Home shop",
        "as_of": SNAPSHOTS[-1],
        "stage_sizes": stage_sizes,
        "flows": flows,
        "matrix": matrix,
        "personas": personas,
        "alerts": alerts,
        "forecast": forecast,
        "notes": ["Snapshots are month ends.", "Counts < 5 are <b>not</b> suppressed."],
    }

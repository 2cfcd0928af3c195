"""The migration report: one offline HTML file, escaped, deterministic, rendered by a real browser."""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from microseg.dynamics.report import STAGE_COLOURS, write_report
from tests.dynamics.conftest import MALICIOUS, SNAPSHOTS, STAGES, offline_report

#: Attributes through which a page can load or point to another resource.
URL_ATTRIBUTES = {
    "src",
    "href",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "xlink:href",
    "background",
}


class _Resources(HTMLParser):
    """Every tag with its URL attributes, the inline style text and the script bodies of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in = tag if tag in ("script", "style") else None
        if tag == "script":
            self.scripts.append("")
        for name, value in attrs:
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.styles.append(data)
        elif self._in == "script":
            self.scripts[-1] += data


def _parse(path: Path) -> tuple[str, _Resources]:
    text = path.read_text(encoding="utf-8")
    resources = _Resources()
    resources.feed(text)
    return text, resources


def test_report_is_one_offline_file(report_inputs, tmp_path):
    path = write_report(tmp_path / "out" / "report.html", **report_inputs)

    assert path == tmp_path / "out" / "report.html" and path.is_file()
    text, page = _parse(path)
    # Nothing to fetch: no stylesheet links, no script or image sources, only in-page anchors.
    assert "link" not in page.tags and "img" not in page.tags and "iframe" not in page.tags
    assert [u for u in page.urls if not u[2].startswith("#")] == []
    assert 'src="http' not in text.replace(get_plotlyjs(), "")
    assert all("url(" not in style and "@import" not in style for style in page.styles)
    # Plotly's JavaScript inlined exactly once, in the head, ahead of the figures.
    assert text.count(get_plotlyjs()) == 1
    assert sum(get_plotlyjs() in script for script in page.scripts) == 1
    assert text.index(get_plotlyjs()) < text.index("</head>") < text.index("Plotly.newPlot")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    for heading in (
        "Stage sizes over time",
        "Migration between stages",
        "Transition matrix",
        "Personas",
        "Alerts",
        "Forecast for next period",
        "Notes",
    ):
        assert f">{heading}</h2>" in text and f">{heading}</a></li>" in text


def test_user_text_is_escaped(report_inputs, tmp_path):
    text, _ = _parse(write_report(tmp_path / "report.html", **report_inputs))

    body = text.replace(get_plotlyjs(), "")
    assert MALICIOUS not in body
    assert "<h3>&lt;script&gt;alert(1)&lt;/script&gt;</h3>" in body
    assert "Garden &amp; Home shop" in body
    assert "Counts &lt; 5 are &lt;b&gt;not&lt;/b&gt; suppressed." in body
    assert "active → at_risk rose to 20% (history 8%)" in body


def test_same_inputs_give_the_same_bytes(report_inputs, tmp_path):
    first = write_report(tmp_path / "a.html", **report_inputs).read_bytes()
    second = write_report(tmp_path / "b.html", **report_inputs).read_bytes()

    assert first == second
    for div_id in ("microseg-stage-sizes", "microseg-migration", "microseg-transitions"):
        assert f'id="{div_id}"'.encode() in first


def test_sections_follow_the_inputs(report_inputs, tmp_path):
    inputs = dict(report_inputs, alerts=report_inputs["alerts"].iloc[0:0], forecast=None, notes=())
    text, _ = _parse(write_report(tmp_path / "report.html", **inputs))

    assert "No transition departs significantly from history" in text
    assert 'id="forecast"' not in text and 'id="notes"' not in text
    assert text.count('<article class="card">') == 3


def test_persona_details_from_segment_card_columns(report_inputs, tmp_path):
    personas = report_inputs["personas"].drop(columns="card").iloc[:1]
    personas = personas.assign(
        top_categories=[[("books", 0.55)]],
        distinguishing=[
            [
                {
                    "feature": "days_since_last_purchase",
                    "segment_mean": 210.0,
                    "base_mean": 60.0,
                    "effect_size": -1.2,
                    "kind": "numeric",
                }
            ]
        ],
        stage_mix=[{"at_risk": 0.8, "churned": 0.2}],
    )
    text, _ = _parse(write_report(tmp_path / "report.html", **dict(report_inputs, personas=personas)))

    assert "<li>books <span>55%</span></li>" in text
    assert "days since last purchase 210 vs 60.0" in text and "(-1.2 sd)" in text
    assert f"background:{STAGE_COLOURS['at_risk']}" in text and "at_risk 80% · churned 20%" in text


@pytest.mark.parametrize(
    ("argument", "column"),
    [
        ("stage_sizes", "customers"),
        ("flows", "to_date"),
        ("personas", "label"),
        ("alerts", "p_adjusted"),
        ("forecast", "forecast"),
    ],
)
def test_a_missing_column_is_named(report_inputs, tmp_path, argument, column):
    inputs = dict(report_inputs, **{argument: report_inputs[argument].drop(columns=column)})

    with pytest.raises(ValueError, match=f"{argument} is missing column '{column}'"):
        write_report(tmp_path / "report.html", **inputs)
    assert not (tmp_path / "report.html").exists()


def test_matrix_must_hold_counts(report_inputs, tmp_path):
    matrix = report_inputs["matrix"].astype(object)
    matrix.iloc[0, 0] = "many"

    with pytest.raises(ValueError, match="matrix must hold customer counts"):
        write_report(tmp_path / "report.html", **dict(report_inputs, matrix=matrix))


# --- in a browser ------------------------------------------------------------------------------


def _decode_png(data: bytes) -> np.ndarray:
    """Pixels (height x width x channels) of an 8-bit, non-interlaced PNG such as Chromium writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, compressed, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            compressed.append(chunk)
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour_type in (0, 2, 4, 6), header
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    rows = np.frombuffer(zlib.decompress(b"".join(compressed)), np.uint8).reshape(height, width * bpp + 1)
    image = np.zeros((height, width * bpp), np.uint8)
    prior = image[0].copy()
    for y in range(height):
        image[y] = prior = _unfilter(int(rows[y, 0]), rows[y, 1:], prior, bpp)
    return image.reshape(height, width, bpp)


def _unfilter(kind: int, line: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """Undo one scanline's PNG filter (0 none, 1 sub, 2 up, 3 average, 4 Paeth)."""
    if kind == 0:
        return line
    if kind == 1:
        return np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:
        return line + prior
    out, up = bytearray(line.tobytes()), prior.tolist()
    for i in range(len(out)):
        left, upper_left = (out[i - bpp], up[i - bpp]) if i >= bpp else (0, 0)
        if kind == 3:
            out[i] = (out[i] + ((left + up[i]) >> 1)) & 0xFF
            continue
        estimate = left + up[i] - upper_left
        distances = (abs(estimate - left), abs(estimate - up[i]), abs(estimate - upper_left))
        if distances[0] <= distances[1] and distances[0] <= distances[2]:
            out[i] = (out[i] + left) & 0xFF
        elif distances[1] <= distances[2]:
            out[i] = (out[i] + up[i]) & 0xFF
        else:
            out[i] = (out[i] + upper_left) & 0xFF
    return np.frombuffer(bytes(out), np.uint8)


def _pixels_of(image: np.ndarray, colour: str) -> int:
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int((image[:, :, :3] == rgb).all(axis=2).sum())


@pytest.mark.slow
@pytest.mark.browser
def test_report_renders_offline_in_chromium(chromium, report_inputs, tmp_path):
    path = write_report(tmp_path / "report.html", **report_inputs)
    url = path.as_uri()
    with offline_report(chromium, path) as (page, log):
        assert page.locator(".js-plotly-plot").count() == 3
        assert page.locator("#microseg-stage-sizes .scatterlayer .trace").count() == len(STAGES)
        assert page.locator("#microseg-transitions .heatmaplayer image").count() == 1
        node_labels = [t.text_content() for t in page.locator("#microseg-migration .node-label").all()]
        assert sorted(node_labels) == sorted(STAGES * len(SNAPSHOTS))  # every stage in every column
        columns = page.locator("#microseg-migration .annotation-text").all_text_contents()
        assert columns == [day.isoformat() for day in SNAPSHOTS]
        totals = report_inputs["matrix"].sum(axis=1)
        row_labels = [t.text_content() for t in page.locator("#microseg-transitions .ytick text").all()]
        assert row_labels == [f"{stage} ({totals[stage]:,})" for stage in STAGES]
        card_titles = page.locator(".card h3").all_text_contents()
        assert card_titles == ["Loyal garden lovers", MALICIOUS, "Lapsing tech buyers"]

        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)

    assert log.blocked == []
    assert [u for u in log.requested if u != url and not u.startswith(("data:", "blob:"))] == []
    assert log.errors == []
    assert log.dialogs == []
    image = _decode_png(screenshot.read_bytes())
    assert image.shape[1] == 1280 and image.shape[0] > 1500
    colours = np.unique(image[:, :, :3].reshape(-1, 3), axis=0)
    assert len(colours) > 1000, f"a nearly blank page: {len(colours)} colours"
    assert _pixels_of(image, "#1f2933") > 10_000  # the header band
    for stage in STAGES:  # Sankey nodes are drawn in each stage's colour
        assert _pixels_of(image, STAGE_COLOURS[stage]) > 100, stage


def test_matrix_totals_and_rates_go_into_the_figure(report_inputs, tmp_path):
    text, _ = _parse(write_report(tmp_path / "report.html", **report_inputs))
    matrix = report_inputs["matrix"]
    row = matrix.loc["active"]

    assert f'"active ({row.sum():,})"' in text
    assert f"{100 * row['at_risk'] / row.sum():.1f}%\\u003cbr\\u003e{row['at_risk']}" in text
    assert "NaN" not in text.replace(get_plotlyjs(), "")


def test_a_stub_period_is_marked_and_the_matrix_period_and_forecast_note_are_shown(report_inputs, tmp_path):
    flows = report_inputs["flows"].copy()
    last = flows["to_date"] == flows["to_date"].max()
    flows["period"] = "full"
    flows.loc[last, "period"] = "stub"
    flows.loc[last, "to_date"] = SNAPSHOTS[-2] + dt.timedelta(days=9)
    inputs = dict(
        report_inputs,
        flows=flows,
        matrix_period=(SNAPSHOTS[0], SNAPSHOTS[1]),
        forecast_note="CLV at stake = P(move) x CLV <i>per customer</i>",
    )
    text, _ = _parse(write_report(tmp_path / "report.html", **inputs))
    body = text.replace(get_plotlyjs(), "")
    # the column of the stub's end says what it is; the full months do not
    assert body.count("9-day stub") == 1 and "-day full" not in body
    assert f"Where the customers of each stage went from {SNAPSHOTS[0]} to {SNAPSHOTS[1]}:" in body
    assert "<p>CLV at stake = P(move) x CLV &lt;i&gt;per customer&lt;/i&gt;</p>" in body


def test_user_text_in_attributes_and_tables_is_escaped(report_inputs, tmp_path):
    sneaky = '" onmouseover="alert(1)'
    card = {"stage_mix": {sneaky: 0.6, "active": 0.4}, "top_categories": [["<i>toys</i>", 0.5]]}
    personas = report_inputs["personas"].assign(card=[card, None, None])
    forecast = report_inputs["forecast"].assign(
        segment=["<b>x</b>", *report_inputs["forecast"]["segment"][1:]]
    )
    text, _ = _parse(
        write_report(tmp_path / "r.html", **dict(report_inputs, personas=personas, forecast=forecast))
    )
    body = text.replace(get_plotlyjs(), "")

    assert sneaky not in body and 'onmouseover="' not in body
    assert 'title="&quot; onmouseover=&quot;alert(1) 60.0%"' in body
    assert "<li>&lt;i&gt;toys&lt;/i&gt; <span>50%</span></li>" in body
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in body
    assert "<i>" not in body and "<b>x" not in body

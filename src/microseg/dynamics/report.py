"""Migration report: one self-contained HTML page of how customers move between segments.

The page is written for marketers: open the file in any browser, offline. It holds the stage sizes
over time, the migration between stages (a Sankey diagram with one column per snapshot), the
transition matrix of the latest period, persona cards, the alerts of transitions that depart
from history and, optionally, next period's forecast.

Self-contained means no request leaves the page: Plotly's JavaScript is inlined once from the
installed ``plotly`` package, the styles are inline, there are no fonts, images or links to other
hosts, and a Content-Security-Policy forbids the browser to fetch anything. Every text that
comes from the data (labels, stage names, messages, notes) is HTML-escaped. The output is
deterministic: the same inputs give the same bytes (chart ids are derived from the section
names, there is no timestamp).

The page itself is a template shipped in the package (``microseg/templates/report.html``, on
the frame ``page.html`` every page of ours shares, see :mod:`microseg.outputs.pages`); this
module turns the inputs into Plotly figures and the texts and numbers the template prints.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from microseg.errors import InvalidInputError
from microseg.outputs.pages import render_page

__all__ = ["STAGE_COLOURS", "write_report"]

#: Colour of each lifecycle stage, the same in every chart and card.
STAGE_COLOURS: dict[str, str] = {
    "prospect": "#9aa5b1",
    "new": "#4c78a8",
    "active": "#54a24b",
    "at_risk": "#f58518",
    "churned": "#e45756",
    "reactivated": "#b279a2",
}
#: Colours of other segments, handed out in name order.
_PALETTE = (
    "#72b7b2",
    "#eeca3b",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#17becf",
    "#bcbd22",
    "#8c564b",
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
)

_REQUIRED: dict[str, tuple[str, ...]] = {
    "stage_sizes": ("as_of", "segment", "customers"),
    "flows": ("from_date", "to_date", "source", "target", "customers"),
    "personas": ("segment_id", "kind", "label", "size", "share", "revenue_share", "mean_clv"),
    "alerts": (
        "as_of",
        "group",
        "source",
        "target",
        "rate",
        "historical_rate",
        "ratio",
        "p_value",
        "p_adjusted",
        "test",
        "message",
    ),
    "forecast": ("segment", "current", "forecast"),
}

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
#: The charts' font, the page's own (templates/report.css).
_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


def write_report(
    path: str | Path,
    *,
    title: str,
    as_of: dt.date,
    stage_sizes: pd.DataFrame,
    flows: pd.DataFrame,
    matrix: pd.DataFrame,
    personas: pd.DataFrame,
    alerts: pd.DataFrame,
    forecast: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    matrix_period: tuple[dt.date, dt.date] | None = None,
    forecast_note: str | None = None,
) -> Path:
    """Write the migration report to ``path`` (one HTML file, parent folders created) and return it.

    Inputs (extra columns are ignored; a missing column raises an ``InvalidInputError`` naming it):

    ``stage_sizes``
        ``as_of`` (date), ``segment`` (str), ``customers`` (int): the size of each stage at each
        snapshot, drawn as a stacked area chart (stacked bars for a single snapshot) with each
        stage's share of the customers in the hover.
    ``flows``
        ``from_date``, ``to_date``, ``source``, ``target``, ``customers``: the customers who were
        in ``source`` at ``from_date`` and in ``target`` at ``to_date``, for consecutive snapshots
        (several periods). Drawn as a Sankey diagram with one node column per snapshot date.
        With a ``period`` column (``full``, ``stub`` or ``gap``, as from ``Project.flows``), a
        column that ends a period that is not full says so above it.
    ``matrix``
        The transition matrix of the latest period: index = source states, columns = target
        states, values = customer counts. Drawn as a heatmap of row rates (each row adds up to
        100%) with the counts in the cells and each row's total on its label.
    ``matrix_period``
        Optional ``(start, end)`` of the matrix; by default the last period of ``flows``.
    ``personas``
        ``segment_id``, ``kind``, ``label``, ``size``, ``share``, ``revenue_share``, ``mean_clv``
        and optionally ``card`` (a dict or its JSON string) or the columns ``top_categories``
        (``[[name, share], ...]``), ``distinguishing`` (``[{feature, segment_mean, base_mean,
        effect_size, kind}, ...]``) and ``stage_mix`` (``{stage: share}``), as written by
        :func:`microseg.segments.personas.segment_cards`. One card per row, in the given order.
    ``alerts``
        ``as_of``, ``group``, ``source``, ``target``, ``rate``, ``historical_rate``, ``ratio``,
        ``p_value``, ``p_adjusted``, ``test``, ``message``; rates are fractions. May be empty.
    ``forecast``
        Optional: ``segment``, ``current``, ``forecast`` (expected customers next period) and
        optionally ``at_stake_clv``.
    ``forecast_note``
        Optional paragraph under the forecast table: which model, what "CLV at stake" means.
    ``notes``
        Extra paragraphs, shown at the end.

    >>> import datetime as dt, tempfile, pandas as pd
    >>> sizes = pd.DataFrame({"as_of": [dt.date(2025, 5, 31)] * 2 + [dt.date(2025, 6, 30)] * 2,
    ...                       "segment": ["active", "at_risk"] * 2, "customers": [80, 20, 70, 30]})
    >>> flows = pd.DataFrame({"from_date": [dt.date(2025, 5, 31)] * 3, "to_date": [dt.date(2025, 6, 30)] * 3,
    ...                       "source": ["active", "active", "at_risk"],
    ...                       "target": ["active", "at_risk", "at_risk"], "customers": [70, 10, 20]})
    >>> matrix = pd.DataFrame([[70, 10], [0, 20]], index=["active", "at_risk"], columns=["active", "at_risk"])
    >>> personas = pd.DataFrame({"segment_id": ["c1"], "kind": ["cluster"], "label": ["Loyal garden lovers"],
    ...                          "size": [100], "share": [1.0], "revenue_share": [1.0], "mean_clv": [120.0]})
    >>> alerts = pd.DataFrame(columns=["as_of", "group", "source", "target", "rate", "historical_rate",
    ...                                "ratio", "p_value", "p_adjusted", "test", "message"])
    >>> out = write_report(tempfile.mkdtemp() + "/report.html", title="Shop", as_of=dt.date(2025, 6, 30),
    ...                    stage_sizes=sizes, flows=flows, matrix=matrix, personas=personas, alerts=alerts)
    >>> "Migration between stages" in out.read_text(encoding="utf-8")
    True
    """
    for argument, frame in (
        ("stage_sizes", stage_sizes),
        ("flows", flows),
        ("personas", personas),
        ("alerts", alerts),
        ("forecast", forecast),
    ):
        if frame is not None:
            _require(frame, argument)
    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(f"matrix must be a pandas DataFrame, got {type(matrix).__name__}")
    counts = matrix.apply(pd.to_numeric, errors="coerce")
    if (counts.isna() & matrix.notna()).to_numpy().any():
        raise InvalidInputError("matrix must hold customer counts (numbers), found other values")
    if isinstance(notes, str):
        notes = [notes]

    colours = _Colours(
        _names(stage_sizes["segment"]),
        _names(flows["source"]),
        _names(flows["target"]),
        _names(matrix.index),
        _names(matrix.columns),
        *(_card(row).get("stage_mix", {}).keys() for _, row in personas.iterrows()),
    )
    page = render_page(
        "report.html",
        title=_text(title),
        as_of=_day(as_of),
        stage_figure=_stage_figure(stage_sizes, colours),
        migration_figure=_sankey_figure(flows, colours),
        matrix_figure=_matrix_figure(counts.fillna(0)),
        matrix_period=_matrix_period(flows, matrix_period),
        cards=[_persona_card(row, _card(row), colours) for _, row in personas.iterrows()],
        alerts=_alert_rows(alerts),
        forecast=None if forecast is None else _forecast_rows(forecast),
        forecast_note=forecast_note,
        notes=[_text(note) for note in notes],
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# --- validation and formatting -------------------------------------------------------------


def _require(frame: Any, argument: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{argument} must be a pandas DataFrame, got {type(frame).__name__}")
    for column in _REQUIRED[argument]:
        if column not in frame.columns:
            have = ", ".join(map(str, frame.columns)) or "none"
            raise InvalidInputError(f"{argument} is missing column {column!r} (it has: {have})")


def _text(value: Any) -> str:
    """A value as the page prints it: missing values are blank (the template escapes the text)."""
    return "" if _missing(value) else str(value)


def _plot_text(value: Any) -> str:
    """Text for a Plotly label: Plotly reads labels as HTML-like markup, so user text is escaped."""
    return html.escape(str(value), quote=False)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _int(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{round(number):,}"


def _pct(value: Any, digits: int = 1) -> str:
    number = _number(value)
    return "–" if number is None else f"{number * 100:.{digits}f}%"


def _amount(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "–"
    if abs(number) >= 100 or number == 0:
        return f"{number:,.0f}"
    return f"{number:.1f}" if abs(number) >= 1 else f"{number:.2f}"


def _p(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return f"{number:.1e}" if number < 0.001 else f"{number:.3f}"


def _day(value: Any) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        return str(value)


def _names(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values if not _missing(v)]


class _Colours:
    """One colour per stage name: lifecycle stages keep theirs, others take the palette in name order."""

    def __init__(self, *groups: Iterable[str]) -> None:
        names = {str(n) for group in groups for n in group}
        free = [c for c in _PALETTE if c not in STAGE_COLOURS.values()]
        self.order = [s for s in STAGE_COLOURS if s in names] + sorted(names - STAGE_COLOURS.keys())
        self._of = {s: STAGE_COLOURS[s] for s in STAGE_COLOURS}
        for i, name in enumerate(sorted(names - STAGE_COLOURS.keys())):
            self._of[name] = free[i % len(free)]

    def __call__(self, name: Any) -> str:
        return self._of.get(str(name), "#888888")

    def rank(self, name: Any) -> tuple[int, str]:
        name = str(name)
        return (self.order.index(name) if name in self.order else len(self.order), name)


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _figure_html(fig: Any, div_id: str, height: int) -> Markup:
    fig.update_layout(
        height=height,
        template="plotly_white",
        font={"family": _FONT, "size": 13},
        paper_bgcolor="rgba(0,0,0,0)",
    )
    # Plotly writes the data as JSON with <, > and & as \u escapes, so user text cannot end the script
    figure = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_PLOT_CONFIG,
        default_height=f"{height}px",
    )
    return Markup(figure)


# --- sections ------------------------------------------------------------------------------


def _stage_figure(stage_sizes: pd.DataFrame, colours: _Colours) -> Markup | None:
    import plotly.graph_objects as go

    frame = stage_sizes.assign(
        as_of=stage_sizes["as_of"].map(_day),
        segment=stage_sizes["segment"].astype(str),
        customers=pd.to_numeric(stage_sizes["customers"], errors="coerce").fillna(0),
    )
    if frame.empty:
        return None
    table = frame.pivot_table(index="as_of", columns="segment", values="customers", aggfunc="sum").fillna(0)
    table = table.sort_index()[sorted(table.columns, key=colours.rank)]
    totals = table.sum(axis=1).replace(0, np.nan)
    shares = table.div(totals, axis=0).fillna(0) * 100
    dates = list(table.index)
    fig = go.Figure()
    for segment in table.columns:
        hover = f"<b>{_plot_text(segment)}</b>: %{{y:,}} customers (%{{customdata:.1f}}%)<extra></extra>"
        common = {
            "x": dates,
            "y": table[segment].round().astype(int).tolist(),
            "name": _plot_text(segment),
            "customdata": shares[segment].round(2).tolist(),
            "hovertemplate": hover,
        }
        if len(dates) > 1:
            fig.add_trace(
                go.Scatter(
                    **common,
                    mode="lines",
                    stackgroup="stages",
                    line={"width": 0.5, "color": colours(segment)},
                    fillcolor=_rgba(colours(segment), 0.75),
                )
            )
        else:
            fig.add_trace(go.Bar(**common, marker_color=colours(segment)))
    fig.update_layout(
        barmode="stack",
        hovermode="x unified",
        margin={"l": 60, "r": 20, "t": 20, "b": 40},
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        yaxis_title="customers",
    )
    if len(dates) == 1:
        fig.update_xaxes(type="category")
    else:  # a little room either side, or Plotly drops the tick of the last snapshot
        first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
        room = (last - first) * 0.03
        fig.update_xaxes(
            type="date",
            tickmode="array",
            tickvals=dates,
            tickformat="%Y-%m-%d",
            range=[(first - room).isoformat(), (last + room).isoformat()],
        )
    return _figure_html(fig, "microseg-stage-sizes", 420)


def _sankey_figure(flows: pd.DataFrame, colours: _Colours) -> Markup | None:
    import plotly.graph_objects as go

    frame = flows.assign(
        from_date=flows["from_date"].map(_day),
        to_date=flows["to_date"].map(_day),
        source=flows["source"].astype(str),
        target=flows["target"].astype(str),
        customers=pd.to_numeric(flows["customers"], errors="coerce").fillna(0),
    )
    frame = frame.groupby(["from_date", "to_date", "source", "target"], as_index=False)["customers"].sum()
    frame = frame[frame["customers"] > 0]
    if frame.empty:
        return None
    outflow = frame.groupby(["from_date", "source"])["customers"].sum()
    inflow = frame.groupby(["to_date", "target"])["customers"].sum()
    values: dict[tuple[str, str], float] = {}
    for (day, stage), n in list(outflow.items()) + list(inflow.items()):
        values[(day, stage)] = max(values.get((day, stage), 0.0), float(n))
    dates = sorted({day for day, _ in values})
    nodes = sorted(values, key=lambda node: (dates.index(node[0]), colours.rank(node[1])))
    index = {node: i for i, node in enumerate(nodes)}

    height, margin, top, pad = 460, 20, 36, 14
    xs, ys = _sankey_positions(nodes, values, dates, (pad / (height - margin - top)))
    link_share = [
        100 * n / outflow[(row.from_date, row.source)]
        for row, n in zip(frame.itertuples(), frame["customers"], strict=True)
    ]
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            valueformat=",.0f",
            node={
                # the stage on the node, its date above the column (long labels would collide)
                "label": [_plot_text(stage) for _, stage in nodes],
                "customdata": [f"{_plot_text(stage)} · {day}" for day, stage in nodes],
                "color": [colours(stage) for _, stage in nodes],
                "x": xs,
                "y": ys,
                "pad": pad,
                "thickness": 16,
                "line": {"width": 0},
                "hovertemplate": "%{customdata}<br>%{value:,.0f} customers<extra></extra>",
            },
            link={
                "source": [index[(r.from_date, r.source)] for r in frame.itertuples()],
                "target": [index[(r.to_date, r.target)] for r in frame.itertuples()],
                "value": frame["customers"].tolist(),
                "color": [_rgba(colours(s), 0.35) for s in frame["source"]],
                "customdata": [
                    [round(share, 2), r.from_date, r.to_date]
                    for share, r in zip(link_share, frame.itertuples(), strict=True)
                ],
                "hovertemplate": "%{source.label} (%{customdata[1]}) → %{target.label} "
                "(%{customdata[2]})<br>%{value:,.0f} customers "
                "(%{customdata[0]:.1f}% of the source stage)<extra></extra>",
            },
        )
    )
    last = max(len(dates) - 1, 1)
    irregular = _irregular_ends(flows)
    for i, day in enumerate(dates):
        anchor = "left" if i == 0 else "right" if i == len(dates) - 1 else "center"
        fig.add_annotation(
            text=f"<b>{day}</b>" + (f"<br>{_plot_text(irregular[day])}" if day in irregular else ""),
            x=i / last,
            y=1,
            xref="paper",
            yref="paper",
            xanchor=anchor,
            yanchor="bottom",
            showarrow=False,
            font={"size": 12},
        )
    fig.update_layout(margin={"l": margin, "r": margin, "t": top, "b": margin})
    return _figure_html(fig, "microseg-migration", height)


def _irregular_ends(flows: pd.DataFrame) -> dict[str, str]:
    """Snapshot dates (text) that end a period that is not full, with a short mark."""
    if "period" not in flows.columns:
        return {}
    marks = {}
    for row in flows.drop_duplicates(["from_date", "to_date"]).itertuples(index=False):
        if row.period not in (None, "full") and not _missing(row.period):
            days = (pd.Timestamp(row.to_date) - pd.Timestamp(row.from_date)).days
            marks[_day(row.to_date)] = f"{days}-day {row.period}"
    return marks


def _sankey_positions(
    nodes: list[tuple[str, str]], values: Mapping[tuple[str, str], float], dates: list[str], gap: float
) -> tuple[list[float], list[float]]:
    """Node centres (0-1, y down): one column per date, stages stacked in order in each column.

    The node heights follow Plotly's own scale (the fullest column fills the height), so the
    nodes sit where Plotly draws them; Plotly ignores a coordinate of exactly 0, hence the clip.
    """
    columns = {day: [n for n in nodes if n[0] == day] for day in dates}
    scale = min(
        (1 - gap * (len(members) - 1)) / max(sum(values[n] for n in members), 1e-9)
        for members in columns.values()
    )
    xs, ys = {}, {}
    for i, members in enumerate(columns.values()):
        used = sum(values[n] for n in members) * scale + gap * (len(members) - 1)
        top = (1 - used) / 2
        for node in members:
            size = values[node] * scale
            xs[node] = i / max(len(dates) - 1, 1)
            ys[node] = top + size / 2
            top += size + gap
    return [_clip(xs[n]) for n in nodes], [_clip(ys[n]) for n in nodes]


def _clip(position: float) -> float:
    return round(min(max(position, 0.001), 0.999), 4)


def _matrix_figure(counts: pd.DataFrame) -> Markup | None:
    import plotly.graph_objects as go

    if counts.empty:
        return None
    sources = [str(s) for s in counts.index]
    targets = [str(t) for t in counts.columns]
    values = counts.to_numpy(dtype=float)
    totals = values.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals[:, None] > 0, 100 * values / totals[:, None], np.nan)
    text = [
        [
            "" if not values[i, j] > 0 else f"{rates[i, j]:.1f}%<br>{round(values[i, j]):,}"
            for j in range(len(targets))
        ]
        for i in range(len(sources))
    ]
    customdata = [
        [[round(values[i, j]), round(totals[i])] for j in range(len(targets))] for i in range(len(sources))
    ]
    z = [[None if math.isnan(v) else round(float(v), 2) for v in row] for row in rates]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[_plot_text(t) for t in targets],
            y=[_plot_text(s) for s in sources],
            text=text,
            texttemplate="%{text}",
            customdata=customdata,
            hovertemplate="from %{y} to %{x}<br>%{customdata[0]:,} of %{customdata[1]:,} customers "
            "(%{z:.1f}%)<extra></extra>",
            colorscale="Blues",
            zmin=0,
            zmax=100,
            colorbar={"title": {"text": "% of row"}, "ticksuffix": "%"},
            xgap=2,
            ygap=2,
        )
    )
    fig.update_yaxes(
        title_text="from",
        autorange="reversed",
        tickmode="array",
        tickvals=[_plot_text(s) for s in sources],
        ticktext=[f"{_plot_text(s)} ({round(t):,})" for s, t in zip(sources, totals, strict=True)],
    )
    fig.update_xaxes(title_text="to", side="top")
    fig.update_layout(margin={"l": 140, "r": 20, "t": 60, "b": 20})
    height = max(360, 60 * len(sources) + 120)
    return _figure_html(fig, "microseg-transitions", height)


def _matrix_period(flows: pd.DataFrame, period: tuple[dt.date, dt.date] | None) -> tuple[str, str] | None:
    """The (start, end) the matrix covers, as text: the one given, else the last period of the flows."""
    if period is not None:
        return _day(period[0]), _day(period[1])
    if flows.empty:
        return None
    last = flows["to_date"].map(_day).max()
    first = flows.loc[flows["to_date"].map(_day) == last, "from_date"].map(_day).min()
    return first, last


def _card(row: pd.Series) -> dict[str, Any]:
    """The card details of a persona row: its ``card`` (dict or JSON) or its detail columns."""
    card = row.get("card")
    if isinstance(card, str):
        try:
            card = json.loads(card)
        except json.JSONDecodeError:
            card = None
    details = dict(card) if isinstance(card, Mapping) else {}
    for key in ("top_categories", "distinguishing", "stage_mix"):
        value = row.get(key)
        if key not in details and value is not None and not _missing(value):
            details[key] = value
    if not isinstance(details.get("stage_mix", {}), Mapping):
        details["stage_mix"] = {}
    return details


def _persona_card(row: pd.Series, card: Mapping[str, Any], colours: _Colours) -> dict[str, Any]:
    """What the template prints on one persona card."""
    mix = [
        (str(stage), fraction)
        for stage, share in card.get("stage_mix", {}).items()
        if (fraction := _number(share)) is not None and fraction > 0
    ]
    return {
        "label": _text(row["label"]),
        "kind": _text(row["kind"]),
        "segment_id": _text(row["segment_id"]),
        "figures": [
            ("Customers", _int(row["size"])),
            ("Share of customers", _pct(row["share"])),
            ("Share of revenue", _pct(row["revenue_share"])),
            ("Mean CLV", _amount(row["mean_clv"])),
        ],
        "mix": [
            {
                "stage": stage,
                "width": f"{100 * share:.2f}",
                "colour": colours(stage),
                "share": _pct(share),
                "rounded": _pct(share, 0),
            }
            for stage, share in mix
        ],
        "categories": [
            (_text(item[0]), _pct(item[1], 0))
            for item in card.get("top_categories") or []
            if isinstance(item, Sequence) and not isinstance(item, str) and len(item) >= 2
        ],
        "traits": [
            _trait(item)
            for item in card.get("distinguishing") or []
            if isinstance(item, Mapping) and item.get("feature")
        ],
    }


def _trait(item: Mapping[str, Any]) -> dict[str, Any]:
    """One distinguishing feature: the segment's mean against the base's, up or down."""
    feature = str(item["feature"])
    effect = _number(item.get("effect_size")) or 0.0
    if item.get("kind") == "category" or feature.startswith("category:"):
        name = feature.removeprefix("category:")
        segment, base = _pct(item.get("segment_mean"), 0), _pct(item.get("base_mean"), 0)
        return {"up": effect > 0, "category": True, "name": name, "segment": segment, "base": base}
    return {
        "up": effect > 0,
        "category": False,
        "name": feature.replace("_", " "),
        "segment": _amount(item.get("segment_mean")),
        "base": _amount(item.get("base_mean")),
        "effect": f"{effect:+.1f}",
    }


def _alert_rows(alerts: pd.DataFrame) -> list[list[str]]:
    """The cells of the alerts table (its headers are in the template)."""
    return [
        [
            _day(a.as_of),
            _text(a.group),
            f"{_text(a.source)} → {_text(a.target)}",
            _pct(a.rate),
            _pct(a.historical_rate),
            "–" if _number(a.ratio) is None else f"{_number(a.ratio):.2f}×",
            _p(a.p_value),
            _p(a.p_adjusted),
            _text(a.test),
            _text(a.message),
        ]
        for a in alerts.itertuples(index=False)
    ]


def _forecast_rows(forecast: pd.DataFrame) -> dict[str, Any]:
    """The cells of the forecast table and whether it has the CLV-at-stake column."""
    at_stake = "at_stake_clv" in forecast.columns
    rows = []
    for f in forecast.itertuples(index=False):
        current, expected = _number(f.current), _number(f.forecast)
        change = "–"
        if current is not None and expected is not None:
            change = f"{expected - current:+,.0f}"
            if current > 0:
                change += f" ({(expected - current) / current:+.1%})"
        row = [_text(f.segment), _int(current), _int(expected), change]
        if at_stake:
            row.append(_amount(f.at_stake_clv))
        rows.append(row)
    return {"rows": rows, "at_stake": at_stake}

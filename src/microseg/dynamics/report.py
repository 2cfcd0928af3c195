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

from microseg.errors import InvalidInputError

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

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
_NO_ALERTS = "No transition departs significantly from history"


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
    sections = [
        ("stage-sizes", "Stage sizes over time", _stage_section(stage_sizes, colours)),
        ("migration", "Migration between stages", _sankey_section(flows, colours)),
        ("transitions", "Transition matrix", _matrix_section(counts.fillna(0), flows, matrix_period)),
        ("personas", "Personas", _persona_section(personas, colours)),
        ("alerts", "Alerts", _alert_section(alerts)),
    ]
    if forecast is not None:
        section = _forecast_section(forecast) + (f"<p>{_esc(forecast_note)}</p>" if forecast_note else "")
        sections.append(("forecast", "Forecast for next period", section))
    if notes:
        sections.append(("notes", "Notes", "".join(f"<p>{_esc(note)}</p>" for note in notes)))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(title, _day(as_of), sections), encoding="utf-8")
    return path


# --- validation and formatting -------------------------------------------------------------


def _require(frame: Any, argument: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{argument} must be a pandas DataFrame, got {type(frame).__name__}")
    for column in _REQUIRED[argument]:
        if column not in frame.columns:
            have = ", ".join(map(str, frame.columns)) or "none"
            raise InvalidInputError(f"{argument} is missing column {column!r} (it has: {have})")


def _esc(value: Any) -> str:
    return html.escape("" if _missing(value) else str(value), quote=True)


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


def _figure_html(fig: Any, div_id: str, height: int) -> str:
    fig.update_layout(
        height=height,
        template="plotly_white",
        font={"family": _FONT, "size": 13},
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_PLOT_CONFIG,
        default_height=f"{height}px",
    )


def _empty(text: str) -> str:
    return f'<p class="empty">{_esc(text)}</p>'


# --- sections ------------------------------------------------------------------------------


def _stage_section(stage_sizes: pd.DataFrame, colours: _Colours) -> str:
    import plotly.graph_objects as go

    frame = stage_sizes.assign(
        as_of=stage_sizes["as_of"].map(_day),
        segment=stage_sizes["segment"].astype(str),
        customers=pd.to_numeric(stage_sizes["customers"], errors="coerce").fillna(0),
    )
    if frame.empty:
        return _empty("No snapshot sizes were given.")
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
    intro = "<p>Customers in each lifecycle stage at each snapshot; hover for each stage's share.</p>"
    return intro + _figure_html(fig, "microseg-stage-sizes", 420)


def _sankey_section(flows: pd.DataFrame, colours: _Colours) -> str:
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
        return _empty("No migration between snapshots was given.")
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
    intro = (
        "<p>Each column is one snapshot (its date on top); a band shows the customers who moved from one stage to "
        "another (or stayed) between two snapshots. Hover a band for its count.</p>"
    )
    return intro + _figure_html(fig, "microseg-migration", height)


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


def _matrix_section(
    counts: pd.DataFrame, flows: pd.DataFrame, period: tuple[dt.date, dt.date] | None = None
) -> str:
    import plotly.graph_objects as go

    if counts.empty:
        return _empty("No transition matrix was given.")
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
    shown = ""
    if period is not None:
        shown = f" from {_esc(_day(period[0]))} to {_esc(_day(period[1]))}"
    elif not flows.empty:
        last = flows["to_date"].map(_day).max()
        first = flows.loc[flows["to_date"].map(_day) == last, "from_date"].map(_day).min()
        shown = f" from {_esc(first)} to {_esc(last)}"
    intro = (
        f"<p>Where the customers of each stage went{shown}: each row adds up to 100%; the row's "
        "total customers are in brackets, each cell shows the rate and the count.</p>"
    )
    height = max(360, 60 * len(sources) + 120)
    return intro + _figure_html(fig, "microseg-transitions", height)


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


def _persona_section(personas: pd.DataFrame, colours: _Colours) -> str:
    if personas.empty:
        return _empty("No persona was given.")
    cards = [_persona_card(row, _card(row), colours) for _, row in personas.iterrows()]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _persona_card(row: pd.Series, card: Mapping[str, Any], colours: _Colours) -> str:
    figures = (
        ("Customers", _int(row["size"])),
        ("Share of customers", _pct(row["share"])),
        ("Share of revenue", _pct(row["revenue_share"])),
        ("Mean CLV", _amount(row["mean_clv"])),
    )
    parts = [
        f'<article class="card"><h3>{_esc(row["label"])}</h3>',
        f'<p class="kind">{_esc(row["kind"])} · {_esc(row["segment_id"])}</p><dl class="figures">',
        *(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in figures),
        "</dl>",
    ]
    mix = [
        (str(stage), fraction)
        for stage, share in card.get("stage_mix", {}).items()
        if (fraction := _number(share)) is not None and fraction > 0
    ]
    if mix:
        bars = "".join(
            f'<span style="width:{100 * share:.2f}%;background:{colours(stage)}" '
            f'title="{_esc(stage)} {_pct(share)}"></span>'
            for stage, share in mix
        )
        legend = " · ".join(f"{_esc(stage)} {_pct(share, 0)}" for stage, share in mix)
        parts.append(f'<div class="mix">{bars}</div><p class="mix-legend">{legend}</p>')
    categories = [
        f"<li>{_esc(item[0])} <span>{_pct(item[1], 0)}</span></li>"
        for item in card.get("top_categories") or []
        if isinstance(item, Sequence) and not isinstance(item, str) and len(item) >= 2
    ]
    if categories:
        parts.append("<h4>Top categories</h4><ul>" + "".join(categories) + "</ul>")
    traits = [
        _trait(item)
        for item in card.get("distinguishing") or []
        if isinstance(item, Mapping) and item.get("feature")
    ]
    if traits:
        parts.append("<h4>What sets them apart</h4><ul>" + "".join(traits) + "</ul>")
    return "".join(parts) + "</article>"


def _trait(item: Mapping[str, Any]) -> str:
    """One distinguishing feature: the segment's mean against the base's, with an arrow."""
    feature = str(item["feature"])
    effect = _number(item.get("effect_size")) or 0.0
    arrow = '<b class="up">▲</b>' if effect > 0 else '<b class="down">▼</b>'
    if item.get("kind") == "category" or feature.startswith("category:"):
        name = feature.removeprefix("category:")
        text = (
            f"{_esc(name)} spend share {_pct(item.get('segment_mean'), 0)} "
            f"vs {_pct(item.get('base_mean'), 0)}"
        )
    else:
        text = (
            f"{_esc(feature.replace('_', ' '))} {_amount(item.get('segment_mean'))} "
            f"vs {_amount(item.get('base_mean'))} <span>({effect:+.1f} sd)</span>"
        )
    return f"<li>{arrow} {text}</li>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    """An HTML table of already escaped cells; ``numeric`` columns are right-aligned."""
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _alert_section(alerts: pd.DataFrame) -> str:
    if alerts.empty:
        return _empty(_NO_ALERTS)
    rows = [
        (
            _esc(_day(a.as_of)),
            _esc(a.group),
            f"{_esc(a.source)} → {_esc(a.target)}",
            _pct(a.rate),
            _pct(a.historical_rate),
            "–" if _number(a.ratio) is None else f"{_number(a.ratio):.2f}×",
            _p(a.p_value),
            _p(a.p_adjusted),
            _esc(a.test),
            _esc(a.message),
        )
        for a in alerts.itertuples(index=False)
    ]
    headers = (
        "As of",
        "Group",
        "Transition",
        "Rate",
        "Historical",
        "Ratio",
        "p",
        "p (adjusted)",
        "Test",
        "Note",
    )
    intro = "<p>Transitions whose rate this period departs significantly from their history.</p>"
    return intro + _table(headers, rows, numeric={3, 4, 5, 6, 7})


def _forecast_section(forecast: pd.DataFrame) -> str:
    if forecast.empty:
        return _empty("No forecast was given.")
    at_stake = "at_stake_clv" in forecast.columns
    rows = []
    for f in forecast.itertuples(index=False):
        current, expected = _number(f.current), _number(f.forecast)
        change = "–"
        if current is not None and expected is not None:
            change = f"{expected - current:+,.0f}"
            if current > 0:
                change += f" ({(expected - current) / current:+.1%})"
        row = [_esc(f.segment), _int(current), _int(expected), change]
        if at_stake:
            row.append(_amount(f.at_stake_clv))
        rows.append(row)
    headers = ["Segment", "Customers now", "Expected next period", "Change"]
    if at_stake:
        headers.append("CLV at stake")
    return _table(headers, rows, numeric={1, 2, 3, 4})


# --- page ----------------------------------------------------------------------------------

_CSS = (
    f"body{{font-family:{_FONT}}}"
    """
*{box-sizing:border-box}
body{margin:0;color:#1f2933;background:#f5f7fa;line-height:1.5}
header.top{background:#1f2933;color:#fff;padding:24px 16px}
header.top h1{margin:0 auto;max-width:1200px;font-size:1.7rem;font-weight:600}
header.top p{margin:4px auto 0;max-width:1200px;color:#cbd2d9}
main{max-width:1200px;margin:0 auto;padding:16px}
nav.toc{background:#fff;border-radius:8px;padding:12px 20px;margin-bottom:16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
nav.toc ol{margin:0;padding-left:20px;columns:2 16em}
nav.toc a{color:#2f6fb3;text-decoration:none}
nav.toc a:hover{text-decoration:underline}
section{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
section h2{margin:0 0 8px;font-size:1.25rem}
section>p{color:#52606d;margin:0 0 8px}
p.empty{color:#52606d;font-style:italic}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.card{border:1px solid #e4e7eb;border-radius:8px;padding:12px 14px}
.card h3{margin:0;font-size:1.05rem;overflow-wrap:anywhere}
.card .kind{margin:0 0 8px;color:#7b8794;font-size:.8rem;overflow-wrap:anywhere}
.card h4{margin:10px 0 2px;font-size:.85rem;color:#52606d}
.card ul{margin:0;padding-left:18px;font-size:.9rem}
.card li span{color:#7b8794}
dl.figures{display:grid;grid-template-columns:1fr 1fr;gap:4px 12px;margin:0}
dl.figures dt{font-size:.75rem;color:#7b8794}
dl.figures dd{margin:0;font-weight:600}
.mix{display:flex;height:10px;border-radius:5px;overflow:hidden;margin-top:10px;background:#e4e7eb}
.mix span{display:block;height:100%}
.mix-legend{margin:2px 0 0;font-size:.75rem;color:#7b8794}
b.up{color:#2f855a;font-weight:400}
b.down{color:#c53030;font-weight:400}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:6px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#f5f7fa;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
@media (max-width:600px){main{padding:8px}section{padding:12px}}
"""
)


def _page(title: str, as_of: str, sections: Sequence[tuple[str, str, str]]) -> str:
    from plotly.offline import get_plotlyjs

    toc = "".join(f'<li><a href="#{anchor}">{heading}</a></li>' for anchor, heading, _ in sections)
    body = "".join(
        f'<section id="{anchor}"><h2>{heading}</h2>{content}</section>'
        for anchor, heading, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="microseg">'
        f"<title>{_esc(title)} · {_esc(as_of)}</title>"
        f"<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        "</head><body>"
        f'<header class="top"><h1>{_esc(title)}</h1><p>Customer migration report · as of {_esc(as_of)}</p></header>'
        f'<main><nav class="toc"><ol>{toc}</ol></nav>{body}</main>'
        "</body></html>\n"
    )

"""The ``microseg`` command line: a thin front end over ``Project``.

Every failure prints one line ``Error: ...`` and exits 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from microseg.errors import MicrosegError
from microseg.project import Project
from microseg.sources.files import ImportResult

app = typer.Typer(
    name="microseg",
    help="Customer micro-segmentation engine and customer data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


class _State:
    project_dir: Path = Path(".")
    debug: bool = False


state = _State()


@app.callback()
def _options(
    project: Annotated[
        Path, typer.Option("--project", "-p", help="Project folder (holds microseg.toml).")
    ] = Path("."),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    state.project_dir = project
    state.debug = debug


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _import_table(results: list[ImportResult]) -> Table:
    table = Table(title="Import", show_lines=False)
    for col in ("source", "file", "rows read", "loaded", "duplicates", "quarantined", "rows/s"):
        table.add_column(col, justify="left" if col in ("source", "file") else "right")
    for r in results:
        table.add_row(
            r.source,
            Path(r.file).name,
            f"{r.rows_read:,}",
            f"{r.loaded:,}",
            f"{r.duplicates:,}",
            f"{r.quarantined:,}",
            f"{r.rows_per_second:,.0f}",
        )
    return table


def _import_notes(results: list[ImportResult]) -> list[str]:
    """Per-source notes: rows by event type, anonymous rows, missing values."""
    notes = []
    by_source: dict[str, dict] = {}
    for r in results:
        agg = by_source.setdefault(r.source, {"types": {}, "anonymous": 0, "missing": {}})
        for k, v in r.details.get("by_event_type", {}).items():
            agg["types"][k] = agg["types"].get(k, 0) + v
        agg["anonymous"] += r.details.get("anonymous", 0)
        for k, v in r.details.get("missing", {}).items():
            agg["missing"][k] = agg["missing"].get(k, 0) + v
    for source, agg in by_source.items():
        parts = [f"{k} {v:,}" for k, v in sorted(agg["types"].items())]
        if agg["anonymous"]:
            parts.append(f"anonymous (no customer id) {agg['anonymous']:,}")
        if agg["missing"]:
            parts.append("missing " + ", ".join(f"{k} {v:,}" for k, v in agg["missing"].items()))
        if parts:
            notes.append(f"[bold]{source}[/]: " + "; ".join(parts))
    return notes


def _run_imports(project: Project, names: list[str] | None) -> list[ImportResult]:
    with _progress() as progress:
        task = progress.add_task("importing", total=None)

        def on_file(source: str, path: Path, result: ImportResult | None) -> None:
            if result is None:
                progress.update(task, description=f"importing {source}: {path.name}")
            else:
                progress.advance(task)

        results = project.import_sources(names, on_file=on_file)
    console.print(_import_table(results))
    for note in _import_notes(results):
        console.print(note)
    if any(r.quarantined for r in results):
        console.print("Quarantined rows and their reasons: [bold]microseg quarantine[/]")
    return results


def _run_pipeline(project: Project, as_of: dt.date | None) -> None:
    with _progress() as progress:
        task = progress.add_task("pipeline", total=1)

        def on_step(name: str, i: int, n: int) -> None:
            progress.update(task, description=name, completed=i, total=n)

        result = project.run(as_of, on_step=on_step)
    console.print(
        f"Pipeline as of [bold]{result.as_of}[/] on {result.backend}: "
        f"{result.customers:,} customers ({result.valued:,} with purchases valued) in {result.seconds:.1f} s"
    )
    fits = project.model_fits(result.as_of)
    if not fits.empty:
        table = Table(title="Fitted models")
        for col in ("model", "parameter", "estimate", "se"):
            table.add_column(col, justify="left" if col in ("model", "parameter") else "right")
        for r in fits.itertuples():
            table.add_row(r.model, r.parameter, f"{r.estimate:.4g}", f"{r.se:.3g}")
        console.print(table)
    for warning in result.warnings:
        err_console.print(f"[yellow]Warning:[/] {warning}", highlight=False, soft_wrap=True)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder of the new project.")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Project name (default: folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing microseg.toml.")] = False,
) -> None:
    """Create a project folder with a commented microseg.toml."""
    project = Project.init(path, name=name, force=force)
    console.print(f"Created {project.root / 'microseg.toml'}: add your sources, then `microseg import`.")


@app.command("import")
def import_(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to import (default: all).")] = None,
) -> None:
    """Import the configured sources into the warehouse (re-importing adds nothing)."""
    with Project(state.project_dir) as project:
        _run_imports(project, sources)


@app.command()
def run(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Analysis date YYYY-MM-DD (default from config).")
    ] = None,
) -> None:
    """Run the pipeline as of the analysis date and store the results."""
    date = _parse_date(as_of)
    with Project(state.project_dir) as project:
        _run_pipeline(project, date)


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="Folder for the demo project.")] = Path("microseg-demo"),
    customers: Annotated[int, typer.Option(help="Number of customers to generate.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl.")] = "parquet",
    force: Annotated[bool, typer.Option(help="Replace an existing demo project.")] = False,
    months: Annotated[
        int, typer.Option(help="Monthly snapshots up to the analysis date, for the report (0: none).")
    ] = 6,
) -> None:
    """Generate demo data, import it, run the pipeline, and snapshot the last months for the
    migration report."""
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("generating demo data", total=customers)
        project = Project.create_demo(
            path,
            customers=customers,
            seed=seed,
            fmt=fmt,
            force=force,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"Generated {customers:,} customers in {project.root / 'data'}")
    with project:
        _run_imports(project, None)
        _run_pipeline(project, None)
        summary = project.customer_summary()
        report = _demo_history(project, months) if months > 0 else None
    console.print(
        f"Demo finished in {time.perf_counter() - started:.1f} s: {len(summary):,} customers with "
        f"{int(summary['orders'].sum()):,} orders. Project: {project.root}"
    )
    if report is not None:
        console.print(f"Migration report: {report}")


def _demo_history(project: Project, months: int) -> Path:
    """Snapshots of the last ``months`` month ends up to the analysis date, and the report."""
    end = project.analysis_date()
    month = end.year * 12 + end.month - 1 - (months - 1)
    start = dt.date(month // 12, month % 12 + 1, 1)
    with _progress() as progress:
        task = progress.add_task("snapshots", total=months)

        def on_snapshot(date: dt.date, i: int, n: int) -> None:
            progress.update(task, description=f"snapshot {date}", completed=i, total=n)

        result = project.backfill(start, end, every="month", on_snapshot=on_snapshot)
    console.print(
        f"{len(result.runs)} monthly snapshots ({result.runs[0].as_of} to {result.runs[-1].as_of}) "
        f"in {result.seconds:.1f} s"
    )
    return project.report() if len(result.runs) >= 2 else None


@app.command()
def values(
    top: Annotated[int, typer.Option(help="Customers to show, highest CLV first.")] = 10,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
) -> None:
    """Show the most valuable customers: RFM segment, P(alive), expected purchases and CLV."""
    with Project(state.project_dir) as project:
        frame = project.customer_values(_parse_date(as_of))
    if frame.empty:
        console.print("No customer has bought anything yet.")
        return
    frame = frame.sort_values(["clv", "total_spend"], ascending=False, na_position="last").head(top)
    table = Table(title=f"Customer values as of {frame.as_of.iloc[0]:%Y-%m-%d}")
    columns = (
        "customer_id",
        "rfm_segment",
        "transactions",
        "total_spend",
        "p_alive",
        "expected_purchases",
        "clv",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("customer_id", "rfm_segment") else "right")
    for r in frame.itertuples():
        table.add_row(
            r.customer_id,
            r.rfm_segment,
            f"{r.transactions:,}",
            f"{r.total_spend:,.2f}",
            f"{r.p_alive:.2f}",
            f"{r.expected_purchases:.2f}",
            f"{r.clv:,.2f}",
        )
    console.print(table)


@app.command()
def segments(
    kind: Annotated[
        str | None,
        typer.Option(
            help="Layer: lifecycle, clv_tier, rfm_tier, tenure_tier, engagement_tier, composite, "
            "behaviour, demographic, micro, rule (default: a summary of every layer)."
        ),
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
) -> None:
    """List the segments of a layer with their persona label, size and value."""
    with Project(state.project_dir) as project:
        frame = project.segments(kind, _parse_date(as_of))
    if frame.empty:
        console.print("No segments.")
        return
    if kind is None:
        table = Table(title="Segment layers")
        for col in ("layer", "segments", "customers"):
            table.add_column(col, justify="left" if col == "layer" else "right")
        for layer, rows in frame.groupby("kind", sort=False):
            table.add_row(layer, f"{len(rows):,}", f"{int(rows['size'].sum()):,}")
        console.print(table)
        console.print("Details of a layer: [bold]microseg segments --kind behaviour[/]")
        return
    table = Table(title=f"{kind} segments")
    for col in ("segment", "label", "customers", "share", "revenue", "mean CLV"):
        table.add_column(col, justify="left" if col in ("segment", "label") else "right")
    for r in frame.itertuples():
        table.add_row(
            r.segment_id,
            r.label,
            f"{r.size:,}",
            f"{r.share:.1%}",
            "" if r.revenue_share != r.revenue_share else f"{r.revenue_share:.1%}",
            "" if r.mean_clv != r.mean_clv else f"{r.mean_clv:,.2f}",
        )
    console.print(table)


@app.command()
def persona(
    segment_id: Annotated[str | None, typer.Argument(help="Segment id, e.g. active.b2.")] = None,
    customer: Annotated[str | None, typer.Option(help="Show this customer's card instead.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Layer of the segment, when ids repeat across layers.")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
) -> None:
    """Show the persona card of a segment, or the card of one customer (segment of one)."""
    from microseg.segments.personas import format_card

    if (segment_id is None) == (customer is None):
        raise MicrosegError("give a segment id or --customer ID (one of them)")
    with Project(state.project_dir) as project:
        date = _parse_date(as_of)
        card = project.customer_card(customer, date) if customer else project.persona(segment_id, kind, date)
    console.print(format_card(card), highlight=False)


@app.command()
def status() -> None:
    """Row counts of the warehouse tables."""
    with Project(state.project_dir) as project:
        table = Table(title=f"Warehouse {project.config.warehouse}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, count in project.status().items():
            table.add_row(name, f"{count:,}")
        console.print(table)


@app.command()
def quarantine(
    source: Annotated[str | None, typer.Option(help="Only rows of this source.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
) -> None:
    """Show quarantined rows with file, row number and reason."""
    with Project(state.project_dir) as project:
        rows = project.quarantine(source, limit)
    if rows.empty:
        console.print("No quarantined rows.")
        return
    table = Table(title="Quarantine")
    for col in ("source", "file", "row", "reason"):
        table.add_column(col)
    for r in rows.itertuples():
        table.add_row(r.source, Path(r.file).name, str(r.row_number), r.reason)
    console.print(table)


# -- dynamics ---------------------------------------------------------------------------------


def _table(title: str, frame, formats: dict[str, str] | None = None, left: tuple[str, ...] = ()) -> Table:
    """A Rich table of a frame; ``formats`` maps columns to format specs (e.g. ``",.2f"``)."""
    import pandas as pd

    formats = formats or {}
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="left" if col in left else "right")
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
                cells.append("")  # missing, or an open end (still in the segment)
            elif isinstance(value, dt.datetime) and value == dt.datetime.combine(value.date(), dt.time()):
                cells.append(value.date().isoformat())  # snapshot dates come back as midnight timestamps
            elif col in formats:
                cells.append(format(value, formats[col]))
            elif isinstance(value, float):
                cells.append(f"{value:,.2f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First date YYYY-MM-DD.")],
    end: Annotated[
        str | None, typer.Option("--to", help="Last date YYYY-MM-DD (default: the analysis date).")
    ] = None,
    every: Annotated[str | None, typer.Option(help="month or week (default from config).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute snapshots that are up to date.")] = False,
) -> None:
    """Compute a snapshot for every month (or week) end between two dates, each from the events up
    to its date only; snapshots whose inputs did not change are kept."""
    with Project(state.project_dir) as project, _progress() as progress:
        task = progress.add_task("snapshots", total=1)

        def on_snapshot(date: dt.date, i: int, n: int) -> None:
            progress.update(task, description=f"snapshot {date}", completed=i, total=n)

        result = project.backfill(
            _parse_date(start, "--from"),
            _parse_date(end, "--to"),
            every=every,
            force=force,
            on_snapshot=on_snapshot,
        )
    console.print(
        f"{len(result.runs)} snapshots ({result.runs[0].as_of} to {result.runs[-1].as_of}): "
        f"{len(result.computed)} computed, {len(result.reused)} up to date, in {result.seconds:.1f} s"
    )


@app.command()
def snapshots() -> None:
    """List the stored snapshots."""
    with Project(state.project_dir) as project:
        frame = project.snapshots()
    if frame.empty:
        console.print("No snapshots yet: run `microseg run` or `microseg backfill`.")
        return
    frame = frame.assign(computed_at=frame["computed_at"].dt.strftime("%Y-%m-%d %H:%M"))
    console.print(_table("Snapshots", frame, {"seconds": ".1f"}, left=("as_of", "computed_at")))


@app.command()
def migration(
    kind: Annotated[str, typer.Option(help="Layer: lifecycle, clv_tier, behaviour, rule, ...")] = "lifecycle",
    start: Annotated[
        str | None, typer.Option("--from", help="Earlier snapshot (default: second last).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Later snapshot (default: the last).")] = None,
    value: Annotated[str, typer.Option(help="customers, rate, clv_from, clv_to or revenue.")] = "customers",
) -> None:
    """Transition matrix of a layer between two snapshots (rows: where customers were)."""
    with Project(state.project_dir) as project:
        a, b = project._pair(kind, _parse_date(start, "--from"), _parse_date(end, "--to"))
        matrix = project.transition_matrix(kind, a, b, value)
    frame = matrix.reset_index()
    frame.columns = [str(c) for c in frame.columns]
    spec = ".1%" if value == "rate" else (",.0f" if value == "customers" else ",.2f")
    formats = {c: spec for c in map(str, matrix.columns)}
    console.print(
        _table(f"{kind}: {a} (rows) -> {b} (columns), {value}", frame, formats, left=("segment", "source"))
    )


@app.command()
def journey(
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    kind: Annotated[str | None, typer.Option(help="Layer (default: every layer).")] = None,
) -> None:
    """When a customer entered and left each segment."""
    with Project(state.project_dir) as project:
        frame = project.customer_history(customer, kind)
    if frame.empty:
        raise MicrosegError(f"no segment history for customer {customer!r}")
    console.print(_table(f"Segment history of {customer}", frame, left=("kind", "segment_id")))


@app.command()
def paths(
    kind: Annotated[str, typer.Option(help="Layer with one segment per customer.")] = "lifecycle",
    top: Annotated[int, typer.Option(help="Paths to show.")] = 10,
) -> None:
    """The most common paths customers took through a layer."""
    with Project(state.project_dir) as project:
        frame = project.typical_paths(kind, top)
    console.print(_table(f"Typical {kind} paths", frame, {"share": ".1%"}, left=("path",)))


@app.command()
def members(
    segment_id: Annotated[str, typer.Argument(help="Segment id, e.g. at_risk.")],
    on: Annotated[str, typer.Option("--on", help="Date YYYY-MM-DD.")],
    kind: Annotated[str | None, typer.Option(help="Layer, when ids repeat across layers.")] = None,
    limit: Annotated[int, typer.Option(help="Customers to show (0: only the count).")] = 20,
    out: Annotated[Path | None, typer.Option(help="Write every member to this CSV file.")] = None,
) -> None:
    """Who was in a segment on a date."""
    date = _parse_date(on, "--on")
    with Project(state.project_dir) as project:
        frame = project.members_on(segment_id, date, kind)
    if out is not None:
        frame.to_csv(out, index=False)
        console.print(f"Wrote {len(frame):,} members to {out}")
    console.print(f"{len(frame):,} customers were in {segment_id} on {date}")
    if limit and not frame.empty:
        console.print(
            _table(f"{segment_id} on {date}", frame.head(limit), left=tuple(map(str, frame.columns)))
        )


@app.command()
def forecast(
    kind: Annotated[str, typer.Option(help="Layer with one segment per customer.")] = "lifecycle",
    by: Annotated[
        str | None, typer.Option(help="Condition the transitions on this layer ('none': pooled).")
    ] = "clv_tier",
    periods: Annotated[int, typer.Option(help="Periods ahead.")] = 1,
    top: Annotated[int, typer.Option(help="Customers most likely to move to at_risk/churned, by CLV.")] = 10,
    backtest: Annotated[bool, typer.Option(help="Show one-period-ahead errors on past snapshots.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every customer's next-period probabilities (and CLV) to this CSV file."),
    ] = None,
) -> None:
    """Expected segment sizes next period (Markov model of past transitions) and the customers
    whose move to at_risk or churned puts the most CLV at stake."""
    group = None if by in (None, "none") else by
    with Project(state.project_dir) as project:
        sizes = project.forecast(kind, group, periods)
        risky = project.at_risk(kind, group).head(top) if kind == "lifecycle" and top else None
        errors = project.forecast_backtest(kind, group) if backtest else None
        if out is not None:
            table = project.next_period(kind, group)
            table.to_csv(out, index=False)
            console.print(f"Wrote next-period probabilities of {len(table):,} customers to {out}")
    console.print(
        _table(
            f"{kind} in {periods} period{'s' if periods != 1 else ''}",
            sizes,
            {"current": ",d", "forecast": ",.1f", "change": "+,.1f"},
            left=("segment",),
        )
    )
    if risky is not None and not risky.empty:
        frame = risky.reset_index()
        console.print(_table("Most CLV at stake", frame, {"p_move": ".1%"}, left=("customer_id", "state")))
    if errors is not None:
        if errors.empty:
            console.print("Not enough snapshots for a backtest.")
        else:
            console.print(
                _table(
                    "Backtest: mean absolute error of segment shares",
                    errors,
                    {"mae_model": ".4f", "mae_naive": ".4f"},
                    left=("as_of", "target"),
                )
            )
            console.print(
                f"Mean: model {errors['mae_model'].mean():.4f}, same as last period {errors['mae_naive'].mean():.4f}"
            )


@app.command()
def alerts(
    kind: Annotated[str, typer.Option(help="Layer with one segment per customer.")] = "lifecycle",
    by: Annotated[
        str | None, typer.Option(help="Also test within each segment of this layer ('none').")
    ] = "clv_tier",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="End of the period tested (default: latest).")
    ] = None,
) -> None:
    """Transitions whose rate in a period departs significantly from the earlier periods."""
    with Project(state.project_dir) as project:
        frame = project.alerts(kind, None if by in (None, "none") else by, _parse_date(as_of))
    if frame.empty:
        console.print("No alerts: every transition moved at its usual rate.")
        return
    for row in frame.itertuples():
        console.print(f"[bold red]Alert[/] {row.as_of}: {row.message}", highlight=False)
        console.print(f"  test: {row.test}", highlight=False)


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="HTML file (default: reports/report-<date>.html).")] = None,
    kind: Annotated[str, typer.Option(help="Layer whose movements are shown.")] = "lifecycle",
) -> None:
    """Write a self-contained HTML report: stage sizes over time, migration Sankey, transition
    heatmap, persona cards, alerts and the forecast."""
    with Project(state.project_dir) as project:
        path = project.report(out, kind=kind)
    console.print(f"Wrote {path}")


def _parse_date(value: str | None, option: str = "--as-of") -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise MicrosegError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns the exit code; one error style for every failure."""
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except typer.Abort:
        err_console.print("Aborted.")
        return 1
    except Exception as exc:  # every failure ends here: one line, traceback only on --debug
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # a usage error from Typer/Click
            exc.show()
            return exc.exit_code
        if state.debug:
            err_console.print_exception()
        message = str(exc) if isinstance(exc, MicrosegError) else f"{type(exc).__name__}: {exc}"
        err_console.print(f"[red]Error:[/] {message}", highlight=False, soft_wrap=True)
        return getattr(exc, "exit_code", 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

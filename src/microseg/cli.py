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
) -> None:
    """Generate demo data, import it and run the pipeline."""
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
    console.print(
        f"Demo finished in {time.perf_counter() - started:.1f} s: {len(summary):,} customers with "
        f"{int(summary['orders'].sum()):,} orders. Project: {project.root}"
    )


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


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise MicrosegError(f"--as-of: {value!r} is not a date (YYYY-MM-DD)") from None


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

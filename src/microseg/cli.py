"""The ``microseg`` command line: a thin front end over ``Project``.

Every failure prints one line ``Error: ...`` and exits 1; ``--debug`` shows the traceback.
Start-up stays light: the data stack (pandas, DuckDB, Ibis, scikit-learn) is imported inside the
commands that need it, so ``microseg --help`` answers at once. User text (ids, labels, file
names, reasons) is printed through ``microseg.outputs``, never as Rich markup.
"""

from __future__ import annotations

import datetime as dt
import inspect
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from microseg import __version__
from microseg.errors import InvalidInputError, MicrosegError
from microseg.outputs.text import clean_data, plain, shown
from microseg.registry import check_layer, layer_help

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from microseg.outputs.tables import TableView
    from microseg.project import Project
    from microseg.warehouse.ingest.files import ImportResult


def _without_flag_types(params) -> None:
    # Typer labels every option with its type; for a flag (--help, --debug, --force) that reads
    # as if it took a value ("--help <bool>"): flags show no type.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class _Group(TyperGroup):
    def get_params(self, ctx):
        params = super().get_params(ctx)
        _without_flag_types(params)
        return params

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            _without_flag_types(command.get_params(ctx))
        return command


app = typer.Typer(
    name="microseg",
    help="Customer micro-segmentation engine and customer data platform.",
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# No emoji codes (":smile:" in a customer id stays text); markup only in our own templates.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


class _State:
    project_dir: Path = Path(".")
    debug: bool = False


state = _State()


def _print_version(value: bool) -> None:
    if value:
        console.print(f"microseg {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    project: Annotated[
        Path, typer.Option("--project", "-p", help="Project folder (holds microseg.toml).")
    ] = Path("."),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Show the version and exit."),
    ] = False,
) -> None:
    state.project_dir = project
    state.debug = debug


# -- shared options and output ------------------------------------------------------------------


def _checked_layer(value: str | None) -> str | None:
    return None if value is None else check_layer(value)


def _checked_layer_or_none(value: str | None) -> str | None:
    return value if value in (None, "none") else check_layer(value)


def _checked_out(value: Path | None) -> Path | None:
    from microseg.outputs.export import table_format

    if value is not None:
        table_format(value)  # a wrong extension fails before any work is done
    return value


def kind_option(what: str = "Layer", **extra) -> typer.models.OptionInfo:
    """The ``--kind`` option: its help lists the layers of the registry, and a misspelt layer
    is an error with a suggestion before the command runs."""
    return typer.Option("--kind", help=f"{what} ({layer_help()}).", callback=_checked_layer, **extra)


def out_option(what: str = "the whole table") -> typer.models.OptionInfo:
    """The ``--out FILE`` option of a table command: ``.csv`` (formula cells neutralised) or
    ``.parquet``."""
    return typer.Option("--out", help=f"Write {what} to FILE (.csv or .parquet).", callback=_checked_out)


def say(template: str, *values, err: bool = False, **named) -> None:
    """Print a line: ``template`` is Rich markup of ours, ``values`` are shown as plain text."""
    # soft wrap: the terminal folds long lines, no line breaks are written into the text
    (err_console if err else console).print(
        shown(template, *values, **named), highlight=False, soft_wrap=True
    )


def write_out(frame, out: Path | None, what: str = "rows") -> None:
    """Write ``frame`` to ``--out`` (when given) and say so."""
    if out is None:
        return
    from microseg.outputs.export import write_table

    write_table(frame, out)
    say("Wrote {:,} {} to {}", len(frame), what, out)


def show_view(view: TableView, option: str = "--out") -> None:
    """Print a table and, when rows or columns were left out, the line that says so."""
    console.print(view.table)
    note = view.note(option)
    if note:
        say("{}", note)


def show_frame(
    frame,
    title: str,
    formats: dict[str, str] | None = None,
    left: tuple[str, ...] = (),
    limit: int | None = None,
) -> None:
    """Print a frame as a table that fits the terminal (first ``limit`` rows)."""
    from microseg.outputs.tables import frame_table

    show_view(frame_table(frame, title=title, formats=formats, left=left, limit=limit, width=console.width))


def _project() -> Project:
    """The project of ``--project`` (the data stack is imported here, not at start-up)."""
    from microseg.project import Project

    return Project(state.project_dir)


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _import_table(results: list[ImportResult]) -> Table:
    from rich.table import Table

    table = Table(title="Import", show_lines=False)
    for col in ("source", "file", "rows read", "loaded", "duplicates", "corrected", "quarantined", "rows/s"):
        table.add_column(col, justify="left" if col in ("source", "file") else "right")
    for r in results:
        table.add_row(
            plain(r.source),
            plain(Path(r.file).name),
            f"{r.rows_read:,}",
            f"{r.loaded:,}",
            f"{r.duplicates:,}",
            f"{r.corrected:,}",
            f"{r.quarantined:,}",
            f"{r.rows_per_second:,.0f}",
        )
    return table


def _import_notes(results: list[ImportResult]) -> list[str]:
    """Per-source notes: rows by event type, anonymous rows, missing and rounded values, events
    removed because a newer version of their file no longer has them."""
    notes = []
    by_source: dict[str, dict] = {}
    for r in results:
        agg = by_source.setdefault(
            r.source, {"types": {}, "anonymous": 0, "missing": {}, "rounded": {}, "removed": 0}
        )
        for k, v in r.details.get("by_event_type", {}).items():
            agg["types"][k] = agg["types"].get(k, 0) + v
        agg["anonymous"] += r.details.get("anonymous", 0)
        agg["removed"] += r.details.get("removed", 0)
        for what in ("missing", "rounded"):
            for k, v in r.details.get(what, {}).items():
                agg[what][k] = agg[what].get(k, 0) + v
    for source, agg in by_source.items():
        parts = [shown("{} {:,}", k, v) for k, v in sorted(agg["types"].items())]
        if agg["anonymous"]:
            parts.append(f"anonymous (no customer id) {agg['anonymous']:,}")
        if agg["missing"]:
            parts.append("missing " + ", ".join(shown("{} {:,}", k, v) for k, v in agg["missing"].items()))
        if agg["rounded"]:
            parts.append(
                "rounded to 4 decimals (amounts use the exact value) "
                + ", ".join(shown("{} {:,}", k, v) for k, v in agg["rounded"].items())
            )
        if agg["removed"]:
            parts.append(
                f"events removed (their lines changed to bad rows or left the file) {agg['removed']:,}"
            )
        if parts:
            notes.append(shown("[bold]{}[/]: ", source) + "; ".join(parts))
    return notes


def _run_imports(project: Project, names: list[str] | None) -> list[ImportResult]:
    with _progress() as progress:
        task = progress.add_task("importing", total=None)

        def on_file(source: str, path: Path, result: ImportResult | None) -> None:
            if result is None:
                progress.update(task, description=shown("importing {}: {}", source, path.name))
            else:
                progress.advance(task)

        results = project.import_sources(names, on_file=on_file)
    console.print(_import_table(results))
    for note in _import_notes(results):
        console.print(note)
    _print_rejections(results)
    return results


#: Reason patterns shown per file; the rest are in ``microseg quarantine --file``.
REASONS_SHOWN = 8


def _print_rejections(results: list[ImportResult]) -> None:
    """For each file with quarantined rows: its reasons grouped by pattern with counts, and the
    settings that would likely read the rejected rows."""
    for r in results:
        if not r.quarantined:
            continue
        name = Path(r.file).name
        say(
            "[bold]Quarantined[/] {:,} of {:,} rows of {} ({}) ({:.1%}):",
            r.quarantined,
            r.rows_read,
            name,
            r.source,
            r.rejected_share,
        )
        counts = r.reason_counts()
        for pattern, rows in counts[:REASONS_SHOWN]:
            say("  {:>9,}  {}", rows, pattern)
        if len(counts) > REASONS_SHOWN:
            say("  … {:,} more reasons: microseg quarantine --file {}", len(counts) - REASONS_SHOWN, name)
        for hint in r.hints():
            say("  [bold]Hint:[/] {}", hint)
    if any(r.quarantined for r in results):
        console.print(
            "Quarantined rows and their reasons: [bold]microseg quarantine[/] [--source S] [--file F]"
        )


def _run_pipeline(project: Project, as_of: dt.date | None, refit: bool = False) -> dt.date:
    """Run the pipeline, print what it did; returns the date it ran as of."""
    with _progress() as progress:
        task = progress.add_task("pipeline", total=1)

        def on_step(name: str, i: int, n: int) -> None:
            progress.update(task, description=name, completed=i, total=n)

        result = project.run(as_of, on_step=on_step, refit=refit)
    with_clv = f"{result.with_clv:,} with a CLV" if result.with_clv else "none with a CLV (see the warning)"
    say(
        "Pipeline as of [bold]{}[/] on {} in {:.1f} s: {:,} customers, {:,} with purchases, {}",
        result.as_of,
        result.backend,
        result.seconds,
        result.customers,
        result.valued,
        with_clv,
    )
    if result.value_model:
        say("Value model: [bold]{}[/], {}", result.value_model, result.value_model_reason)
    for line in result.clusters:  # clustered layers: models kept or refitted, stability across seeds
        say("Clusters: {}", line)
    fits = project.model_fits(result.as_of)
    if not fits.empty:
        frame = fits[["model", "parameter", "estimate", "se"]]
        show_frame(frame, "Fitted models", {"estimate": ".4g", "se": ".3g"}, left=("model", "parameter"))
    for warning in result.warnings:
        err_console.print(shown("[yellow]Warning:[/] {}", warning), highlight=False, soft_wrap=True)
    return result.as_of


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder of the new project.")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Project name (default: folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing microseg.toml.")] = False,
) -> None:
    """Create a project folder with a commented microseg.toml."""
    from microseg.project import Project

    project = Project.init(path, name=name, force=force)
    say("Created {}: add your sources, then `microseg import`.", project.root / "microseg.toml")


@app.command("import")
def import_(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to import (default: all).")] = None,
    out: Annotated[Path | None, out_option("the import table")] = None,
) -> None:
    """Import the configured sources into the warehouse (re-importing adds nothing)."""
    from microseg.warehouse.ingest.files import check_rejections

    with _project() as project:
        results = _run_imports(project, sources)
    if out is not None:
        import pandas as pd

        fields = (
            "source",
            "file",
            "rows_read",
            "loaded",
            "duplicates",
            "corrected",
            "quarantined",
            "rows_per_second",
        )
        write_out(
            pd.DataFrame([[getattr(r, f) for f in fields] for r in results], columns=fields), out, "files"
        )
    # more rejected rows than a source allows: exit 1 (after the summary has been shown)
    check_rejections(results)


@app.command()
def run(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Analysis date YYYY-MM-DD (default from config).")
    ] = None,
    out: Annotated[Path | None, out_option("the fitted model parameters")] = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit",
            help="Fit the clustered layers anew instead of continuing the previous snapshot's models.",
        ),
    ] = False,
) -> None:
    """Run the pipeline as of the analysis date and store the results."""
    date = _parse_date(as_of)
    with _project() as project:
        as_of_run = _run_pipeline(project, date, refit)
        if out is not None:
            write_out(project.model_fits(as_of_run), out, "parameters")


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
    from microseg.project import Project

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
    say("Generated {:,} customers in {}", customers, project.root / "data")
    with project:
        _run_imports(project, None)
        _run_pipeline(project, None)
        summary = project.customer_summary()
        report = _demo_history(project, months) if months > 0 else None
    say(
        "Demo finished in {:.1f} s: {:,} customers with {:,} orders. Project: {}",
        time.perf_counter() - started,
        len(summary),
        int(summary["orders"].sum()),
        project.root,
    )
    if report is not None:
        say("Migration report: {}", report)


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
    say(
        "{} monthly snapshots ({} to {}) in {:.1f} s",
        len(result.runs),
        result.runs[0].as_of,
        result.runs[-1].as_of,
        result.seconds,
    )
    return project.report() if len(result.runs) >= 2 else None


@app.command()
def values(
    top: Annotated[int, typer.Option(help="Customers to show, highest CLV first.")] = 10,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
    out: Annotated[Path | None, out_option("every customer's values")] = None,
) -> None:
    """Show the most valuable customers: RFM segment, P(alive), expected purchases and CLV
    (when the models could not give them, the reason instead)."""
    with _project() as project:
        frame = project.customer_values(_parse_date(as_of))
        why = project.why_no_clv(frame.as_of.iloc[0]) if not frame.empty else None
    if frame.empty:
        console.print("No customer has bought anything yet.")
        return
    frame = frame.sort_values(["clv", "total_spend"], ascending=False, na_position="last")
    write_out(frame, out, "customers")
    columns = ["customer_id", "rfm_segment", "transactions", "total_spend"]
    missing = []
    for column, name in (
        ("p_alive", "P(alive)"),
        ("expected_purchases", "expected purchases"),
        ("clv", "CLV"),
    ):
        if frame[column].notna().any():
            columns.append(column)
        else:
            missing.append(name)
    order = "highest CLV first" if "clv" in columns else "highest spend first"
    show_frame(
        frame[columns],
        f"Customer values as of {frame.as_of.iloc[0]:%Y-%m-%d} ({order})",
        {"p_alive": ".2f", "expected_purchases": ".2f"},
        left=("customer_id", "rfm_segment"),
        limit=top,
    )
    if missing:
        names = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
        say("{}: not available ({})", names, why or "the models of this run could not give them")


@app.command()
def validate(
    calibration_end: Annotated[
        str | None,
        typer.Option("--calibration-end", help="Last day of the calibration period YYYY-MM-DD."),
    ] = None,
    holdout_days: Annotated[
        int | None,
        typer.Option(
            "--holdout-days",
            help="Days of holdout at the end of the history (default: clv.holdout_days; "
            "0 there means a third of the history, at most 365).",
            min=1,
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the holdout YYYY-MM-DD (default: the analysis date)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="bgnbd, paretonbd, mbgnbd or nbd; repeat for several (default: clv.model)."
        ),
    ] = None,
    out: Annotated[Path | None, out_option("the table by calibration frequency")] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Chart page (default: reports/clv-validation-<end>.html in the project)."),
    ] = None,
) -> None:
    """Check the CLV models on a holdout period: fitted on the customers who bought by the
    calibration end, compared with what they bought afterwards. Prints predicted and actual
    holdout transactions by calibration frequency (0 to 7+) and writes a chart page with the
    weekly and cumulative tracking of repeat transactions."""
    with _project() as project:
        if calibration_end is not None and holdout_days is not None:
            raise InvalidInputError("give --calibration-end or --holdout-days, not both")
        check = project.validate_clv(
            calibration_end=_parse_date(calibration_end, "--calibration-end"),
            holdout_days=holdout_days,
            as_of=_parse_date(as_of),
            models=model or None,
        )
        page = html or project.root / "reports" / f"clv-validation-{check.observation_end.isoformat()}.html"
    for line in check.summary():
        say("{}", line)
    table = check.by_frequency.reset_index()
    formats = {c: ".3f" for c in table.columns if c not in ("calibration frequency", "customers")}
    show_frame(
        table, "Mean holdout transactions by calibration frequency", formats, left=("calibration frequency",)
    )
    write_out(table, out, "rows")
    say("Wrote {}", check.write_html(page))


@app.command()
def segments(
    kind: Annotated[str | None, kind_option("Layer (default: a summary of every layer)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
    out: Annotated[Path | None, out_option()] = None,
) -> None:
    """List the segments of a layer with their persona label, size and value."""
    date = _parse_date(as_of)
    with _project() as project:
        frame = project.segments(kind, date)
        empty_because = _why_no_segments(project, kind, date) if frame.empty else None
    if empty_because:
        say("No segments: {}.", empty_because)
        return
    if kind is None:
        from microseg.registry import LAYERS

        layers = frame.groupby("kind").agg(segments=("segment_id", "size"), customers=("size", "sum"))
        order = [name for name in LAYERS if name in layers.index]  # registry order: lifecycle first
        order += sorted(set(layers.index) - set(order))
        layers = layers.loc[order].reset_index().rename(columns={"kind": "layer"})
        write_out(layers, out, "layers")
        show_frame(layers, "Segment layers", left=("layer",))
        console.print("Details of a layer: [bold]microseg segments --kind behaviour[/]")
        return
    table = frame.drop(columns=["card"])
    write_out(table, out, "segments")
    shown_frame = table.rename(
        columns={
            "segment_id": "segment",
            "size": "customers",
            "revenue_share": "revenue",
            "mean_clv": "mean CLV",
        }
    )[["segment", "label", "customers", "share", "revenue", "mean CLV"]]
    show_frame(shown_frame, f"{kind} segments", {"share": ".1%", "revenue": ".1%"}, left=("segment", "label"))


def _why_no_segments(project: Project, kind: str | None, as_of: dt.date | None) -> str:
    """Why a layer has no segments, in words a user can act on."""
    settings = project.config.segments
    configured = {"composite": ("composites", settings.composites), "rule": ("rules", settings.rules)}
    if kind in configured:
        table, names = configured[kind]
        if not names:
            hint = (
                " (every customer's four-tier code is in --kind composite_code)"
                if kind == "composite"
                else ""
            )
            return (
                f"no {kind} segments are configured; add them under [segments.{table}] in microseg.toml{hint}"
            )
        return f"none of the {len(names)} configured {kind} segments has a member"
    if kind is None:
        return "the run stored no segment layer"
    return f"the {kind} layer of this run is empty"


@app.command()
def persona(
    segment_id: Annotated[str | None, typer.Argument(help="Segment id, e.g. active.b2.")] = None,
    customer: Annotated[str | None, typer.Option(help="Show this customer's card instead.")] = None,
    kind: Annotated[str | None, kind_option("Layer of the segment, when ids repeat across layers")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
) -> None:
    """Show the persona card of a segment, or the card of one customer (segment of one)."""
    from microseg.segments.personas import format_card

    if (segment_id is None) == (customer is None):
        raise InvalidInputError("give a segment id or --customer ID (one of them)")
    with _project() as project:
        date = _parse_date(as_of)
        card = project.customer_card(customer, date) if customer else project.persona(segment_id, kind, date)
    # every string of the card is made visible first: the card's own line breaks stay
    console.print(plain(format_card(clean_data(card)), newlines=True), soft_wrap=True)


@app.command()
def status(out: Annotated[Path | None, out_option()] = None) -> None:
    """Row counts of the warehouse tables."""
    import pandas as pd

    with _project() as project:
        counts = pd.DataFrame(list(project.status().items()), columns=["table", "rows"])
        warehouse = project.config.warehouse
    write_out(counts, out, "tables")
    say("Warehouse: {}", warehouse)  # a path is too long for a table title
    show_frame(counts, "Rows by table", left=("table",))


@app.command()
def quarantine(
    source: Annotated[str | None, typer.Option(help="Only rows of this source.")] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="Only rows of this file (its path or just its name).")
    ] = None,
    clear: Annotated[
        bool,
        typer.Option(
            "--clear", help="Delete the rows (of --source/--file, else all) instead of showing them."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    out: Annotated[Path | None, out_option("every quarantined row")] = None,
) -> None:
    """Show quarantined rows with file, row number and reason, or clear them. Importing a file
    again replaces its quarantined rows."""
    with _project() as project:
        if clear:
            removed = project.clear_quarantine(source, file=file)
            say("Cleared {:,} quarantined rows.", removed)
            return
        rows = project.quarantine(source, file=file)
    if rows.empty:
        console.print("No quarantined rows.")
        return
    say("{:,} quarantined rows.", len(rows))
    write_out(rows, out, "quarantined rows")
    table = rows.assign(file=rows["file"].map(lambda f: Path(f).name)).rename(columns={"row_number": "row"})
    show_frame(
        table[["source", "file", "row", "reason"]],
        "Quarantine",
        left=("source", "file", "reason"),
        limit=limit,
    )


# -- dynamics ---------------------------------------------------------------------------------


def _table(title: str, frame, formats: dict[str, str] | None = None, left: tuple[str, ...] = ()) -> Table:
    """A Rich table of a whole frame with safe cells; ``show_frame`` also fits it to the screen."""
    from microseg.outputs.tables import frame_table

    return frame_table(frame, title=title, formats=formats, left=left).table


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
    with _project() as project, _progress() as progress:
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
    say(
        "{} snapshots ({} to {}): {} computed, {} up to date, in {:.1f} s",
        len(result.runs),
        result.runs[0].as_of,
        result.runs[-1].as_of,
        len(result.computed),
        len(result.reused),
        result.seconds,
    )


@app.command()
def snapshots(out: Annotated[Path | None, out_option()] = None) -> None:
    """List the stored snapshots."""
    with _project() as project:
        frame = project.snapshots()
    if frame.empty:
        console.print("No snapshots yet: run `microseg run` or `microseg backfill`.")
        return
    write_out(frame, out, "snapshots")
    frame = frame.assign(computed_at=frame["computed_at"].dt.strftime("%Y-%m-%d %H:%M"))
    show_frame(frame, "Snapshots", {"seconds": ".1f"}, left=("as_of", "computed_at"))


@app.command()
def migration(
    kind: Annotated[str, kind_option()] = "lifecycle",
    start: Annotated[
        str | None, typer.Option("--from", help="Earlier snapshot (default: second last).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Later snapshot (default: the last).")] = None,
    value: Annotated[str, typer.Option(help="customers, rate, clv_from, clv_to or revenue.")] = "customers",
    out: Annotated[Path | None, out_option("the whole matrix")] = None,
) -> None:
    """Transition matrix of a layer between two snapshots (rows: where customers were)."""
    from microseg.outputs.tables import matrix_table

    with _project() as project:
        a, b = project._pair(kind, _parse_date(start, "--from"), _parse_date(end, "--to"))
        matrix = project.transition_matrix(kind, a, b, value)
        irregular = project.periods(kind).describe(a, b)
    write_out(matrix.rename_axis("segment").reset_index(), out, "rows")
    spec = ".1%" if value == "rate" else (",.0f" if value == "customers" else ",.2f")
    title = f"{kind}: {a} (rows) -> {b} (columns), {value}" + (f"; {irregular}" if irregular else "")
    show_view(matrix_table(matrix, title=title, spec=spec, width=console.width))
    if irregular:
        say("Not a full period ({}): its moves and rates are not comparable with a full period's.", irregular)


@app.command()
def journey(
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    kind: Annotated[str | None, kind_option("Layer (default: every layer)")] = None,
    out: Annotated[Path | None, out_option()] = None,
) -> None:
    """When a customer entered and left each segment."""
    with _project() as project:
        frame = project.customer_history(customer, kind)
    if frame.empty:
        raise MicrosegError(f"no segment history for customer {customer!r}")
    write_out(frame, out, "stays")
    show_frame(frame, f"Segment history of {customer}", left=("kind", "segment_id"))


@app.command()
def paths(
    kind: Annotated[str, kind_option("Layer with one segment per customer")] = "lifecycle",
    top: Annotated[int, typer.Option(help="Paths to show.")] = 10,
    out: Annotated[Path | None, out_option("every path")] = None,
) -> None:
    """The most common paths customers took through a layer."""
    with _project() as project:
        frame = project.typical_paths(kind, sys.maxsize)
    write_out(frame, out, "paths")
    show_frame(frame, f"Typical {kind} paths", {"share": ".1%"}, left=("path",), limit=top)


@app.command()
def members(
    segment_id: Annotated[str, typer.Argument(help="Segment id, e.g. at_risk.")],
    on: Annotated[str, typer.Option("--on", help="Date YYYY-MM-DD.")],
    kind: Annotated[str | None, kind_option("Layer, needed when the id is in several layers")] = None,
    limit: Annotated[int, typer.Option(help="Customers to show (0: only the count).")] = 20,
    out: Annotated[Path | None, out_option("every member")] = None,
) -> None:
    """Who was in a segment on a date."""
    date = _parse_date(on, "--on")
    with _project() as project:
        frame = project.members_on(segment_id, date, kind)
    write_out(frame, out, "members")
    layer = frame["kind"].iloc[0] if not frame.empty else kind
    say(
        "{:,} customers were in {} on {}" + (" ({} layer)" if layer else ""),
        len(frame),
        segment_id,
        date,
        *([layer] if layer else []),
    )
    if limit and not frame.empty:
        show_frame(frame, f"{segment_id} on {date}", left=tuple(map(str, frame.columns)), limit=limit)


@app.command()
def forecast(
    kind: Annotated[str, kind_option("Layer with one segment per customer")] = "lifecycle",
    by: Annotated[
        str | None,
        typer.Option(
            help=f"Condition the transitions on this layer ('none': pooled; {layer_help()}).",
            callback=_checked_layer_or_none,
        ),
    ] = "clv_tier",
    periods: Annotated[int, typer.Option(help="Periods ahead.")] = 1,
    top: Annotated[int, typer.Option(help="Customers most likely to move to at_risk/churned, by CLV.")] = 10,
    backtest: Annotated[bool, typer.Option(help="Show one-period-ahead errors on past snapshots.")] = False,
    out: Annotated[Path | None, out_option("every customer's next-period probabilities (and CLV)")] = None,
) -> None:
    """Expected segment sizes next period and the customers whose move to at_risk or churned
    puts the most CLV at stake. Each customer's probabilities come from a model of their own
    history or from the Markov chain of their segment and CLV tier, whichever the backtest
    scores better (dynamics.forecast_model)."""
    from microseg.outputs.export import write_table
    from microseg.project import clv_at_stake_text

    group = None if by in (None, "none") else by
    with _project() as project:
        sizes = project.forecast(kind, group, periods)
        choice = project.forecast_choice(kind, group)
        risky = project.at_risk(kind, group).head(top) if kind == "lifecycle" and top else None
        errors = project.forecast_backtest(kind, group) if backtest else None
        period_note = project.periods(kind).note()
        horizon = project.config.clv.horizon_months
        if out is not None:
            table = project.next_period(kind, group)
            write_table(table, out)
            say("Wrote next-period probabilities of {:,} customers to {}", len(table), out)
    show_frame(
        sizes,
        f"{kind} in {periods} period{'s' if periods != 1 else ''}",
        {"current": ",d", "forecast": ",.1f", "change": "+,.1f"},
        left=("segment",),
    )
    say("Next-period probabilities: {}.", choice.reason)
    if periods > 1:
        say("Periods after the first: the Markov chain of the segment transitions.")
    if risky is not None and not risky.empty:
        frame = risky.reset_index()
        show_frame(frame, "Most CLV at stake", {"p_move": ".1%"}, left=("customer_id", "state"))
        say("p_move: the chance of moving to at_risk or churned next period. {}", clv_at_stake_text(horizon))
    if errors is not None:
        if errors.empty:
            console.print("Not enough full periods for a backtest.")
        else:
            scored = errors[["as_of", "log_loss_chain", "log_loss_customer", "brier_chain", "brier_customer"]]
            show_frame(
                scored.rename(columns=lambda c: c.replace("log_loss", "ll")),
                "Backtest: log-loss (ll) and Brier score of each customer's segment one period "
                "after as_of (lower is better)",
                {c: ".4f" for c in ("ll_chain", "ll_customer", "brier_chain", "brier_customer")},
                left=("as_of",),
            )
            show_frame(
                errors[["as_of", "target", "mae_chain", "mae_customer", "mae_naive"]],
                "Backtest: mean absolute error of segment shares",
                {"mae_chain": ".4f", "mae_customer": ".4f", "mae_naive": ".4f"},
                left=("as_of", "target"),
            )
            means = errors.mean(numeric_only=True)
            say(
                "Mean log-loss: customer model {:.4f}, group chain {:.4f}; Brier score: {:.4f}, {:.4f}; "
                "MAE of shares: customer model {:.4f}, group chain {:.4f}, same as last period {:.4f}",
                means["log_loss_customer"],
                means["log_loss_chain"],
                means["brier_customer"],
                means["brier_chain"],
                means["mae_customer"],
                means["mae_chain"],
                means["mae_naive"],
            )
    if period_note:
        say("{}", period_note)


@app.command()
def alerts(
    kind: Annotated[str, kind_option("Layer with one segment per customer")] = "lifecycle",
    by: Annotated[
        str | None,
        typer.Option(
            help=f"Also test within each segment of this layer ('none'; {layer_help()}).",
            callback=_checked_layer_or_none,
        ),
    ] = "clv_tier",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="End of the period tested (default: latest).")
    ] = None,
    out: Annotated[Path | None, out_option("every alert with its test")] = None,
) -> None:
    """Transitions whose rate in a full period departs significantly from the earlier periods."""
    with _project() as project:
        date = _parse_date(as_of)
        frame = project.alerts(kind, None if by in (None, "none") else by, date)
        start, end = project.alert_period(kind, date)
        period_note = project.periods(kind).note()
    write_out(frame, out, "alerts")
    say("Period tested: {} to {}, against the full periods before it.", start, end)
    if period_note:
        say("{}", period_note)
    if frame.empty:
        console.print("No alerts: every transition moved at its usual rate.")
        return
    for row in frame.itertuples():
        say("[bold red]Alert[/] {}: {}", row.as_of, row.message)
        say("  test: {}", row.test)


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="HTML file (default: reports/report-<date>.html).")] = None,
    kind: Annotated[str, kind_option("Layer whose movements are shown")] = "lifecycle",
) -> None:
    """Write a self-contained HTML report: stage sizes over time, migration Sankey, transition
    heatmap, persona cards, alerts and the forecast."""
    with _project() as project:
        path = project.report(out, kind=kind)
    say("Wrote {}", path)


def _joined_paragraphs(doc: str) -> str:
    """A docstring with each paragraph on one line: Typer's Rich help keeps source line breaks."""
    return "\n\n".join(" ".join(part.split()) for part in doc.split("\n\n"))


for _info in app.registered_commands:
    if _info.help is None and _info.callback is not None and _info.callback.__doc__:
        _info.help = _joined_paragraphs(inspect.getdoc(_info.callback))


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
        # the message may quote user text: shown as text, its own line breaks kept
        err_console.print(Text("Error:", style="red") + " " + plain(message, newlines=True), soft_wrap=True)
        return getattr(exc, "exit_code", 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

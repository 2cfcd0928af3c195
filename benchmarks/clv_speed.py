"""CLV speed: microseg against lifetimes 0.11.3 and a bare DuckDB scan, in one run.

For N generated customers (default 1M, about 2.9M purchase transactions), each contender computes,
from the same transactions (customer, day, amount), the RFM summary, fits BG/NBD and Gamma-Gamma
and predicts the 12-month CLV of every customer:

* ``microseg``: ``rfm_table`` on the DuckDB warehouse, then ``value_customers``;
* ``lifetimes``: ``summary_data_from_transaction_data``, ``BetaGeoFitter``, ``GammaGammaFitter``
  and ``customer_lifetime_value`` (``pip install lifetimes==0.11.3`` beside microseg);
* ``scan``: a bare DuckDB ``count, sum, max ... GROUP BY customer`` of the same table.

Each contender runs in its own process so that its peak memory (max RSS) is its own, ``--repeat``
times (default 2); its fastest run counts. The script prints times, ratios and the largest
relative difference between the fitted parameters.

    python benchmarks/clv_speed.py [--customers 1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = dt.date(2025, 12, 31)


def prepare(workdir: Path, customers: int) -> Path:
    """Generated purchases as one transaction per order in a DuckDB file (``tx`` table)."""
    import duckdb

    from microseg.demo import generate_demo

    manifest = generate_demo(workdir / "demo", customers, seed=11, as_of=AS_OF, kinds=("purchases",))
    parts = [str(p) for p in manifest.files["purchases"]]
    db = workdir / "bench.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        f"""CREATE TABLE events AS
        SELECT customer_id, 'purchase' AS event_type, min(ts) AS ts, order_id,
               CAST(sum(quantity * unit_price) AS DECIMAL(18, 4)) AS amount
        FROM read_parquet({parts!r}) WHERE event_type = 'purchase'
        GROUP BY customer_id, order_id"""
    )
    con.execute(
        f"COPY (SELECT customer_id, ts, CAST(amount AS DOUBLE) AS amount FROM events) TO '{workdir / 'tx.parquet'}'"
    )
    con.close()
    shutil.rmtree(workdir / "demo")
    return db


def run_microseg(workdir: Path) -> dict:
    import ibis
    import pyarrow.compute as pc

    from microseg.config import ClvConfig
    from microseg.features.valuation import rfm_table, value_customers

    con = ibis.duckdb.connect(str(workdir / "bench.duckdb"), read_only=True)
    started = time.perf_counter()
    rfm = rfm_table(con.table("events"), AS_OF, "day").to_pyarrow()
    summary_s = time.perf_counter() - started
    settings = ClvConfig(model="bgnbd", period="day", horizon_months=12, discount_rate=0.01)
    valuation = value_customers(rfm, AS_OF, settings)  # BG/NBD, as lifetimes' BetaGeoFitter
    total = time.perf_counter() - started
    fits = valuation.fits.set_index(["model", "parameter"]).estimate
    return {
        "seconds": total,
        "summary_seconds": summary_s,
        "customers": rfm.num_rows,
        "transactions": int(pc.sum(rfm.column("transactions")).as_py()),
        "params": {
            "r": fits["BGNBD", "r"],
            "alpha": fits["BGNBD", "alpha"],
            "a": fits["BGNBD", "a"],
            "b": fits["BGNBD", "b"],
            "p": fits["GammaGamma", "p"],
            "q": fits["GammaGamma", "q"],
            "v": fits["GammaGamma", "v"],
        },
        "clv_total": float(pc.sum(valuation.values.column("clv")).as_py()),
        "warnings": valuation.warnings,
    }


def run_lifetimes(workdir: Path) -> dict:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    tx = pd.read_parquet(workdir / "tx.parquet")
    started = time.perf_counter()
    rfm = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "ts",
        monetary_value_col="amount",
        observation_period_end=pd.Timestamp(AS_OF),
        freq="D",
    )
    summary_s = time.perf_counter() - started
    bgf = BetaGeoFitter().fit(rfm.frequency, rfm.recency, rfm["T"])
    repeat = rfm[(rfm.frequency > 0) & (rfm.monetary_value > 0)]
    ggf = GammaGammaFitter().fit(repeat.frequency, repeat.monetary_value)
    clv = ggf.customer_lifetime_value(
        bgf, rfm.frequency, rfm.recency, rfm["T"], rfm.monetary_value, time=12, discount_rate=0.01, freq="D"
    )
    total = time.perf_counter() - started
    bp, gp = bgf.params_, ggf.params_
    return {
        "seconds": total,
        "summary_seconds": summary_s,
        "customers": len(rfm),
        "params": {
            "r": bp["r"],
            "alpha": bp["alpha"],
            "a": bp["a"],
            "b": bp["b"],
            "p": gp["p"],
            "q": gp["q"],
            "v": gp["v"],
        },
        "clv_total": float(clv.sum()),
    }


def run_scan(workdir: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(workdir / "bench.duckdb"), read_only=True)
    started = time.perf_counter()
    con.execute(
        "SELECT customer_id, count(*), sum(amount), max(ts) FROM events GROUP BY customer_id"
    ).to_arrow_table()
    return {"seconds": time.perf_counter() - started}


PARTS = {"microseg": run_microseg, "lifetimes": run_lifetimes, "scan": run_scan}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(part: str, workdir: Path, repeat: int) -> None:
    """Run one contender ``repeat`` times in this process and keep its fastest run."""
    result = min((PARTS[part](workdir) for _ in range(repeat)), key=lambda r: r["seconds"])
    result["max_rss_mb"] = peak_rss_mb()
    print(json.dumps(result, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender; the fastest counts")
    parser.add_argument(
        "--without-lifetimes", action="store_true", help="skip lifetimes (for sizes it cannot handle in time)"
    )
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        child(args.part, args.workdir, args.repeat)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="microseg-clv-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    prepare(workdir, args.customers)
    print(f"prepared {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
    results = {}
    parts = ("scan", "microseg") if args.without_lifetimes else ("scan", "microseg", "lifetimes")
    for part in parts:
        command = [
            sys.executable,
            __file__,
            "--part",
            part,
            "--workdir",
            str(workdir),
            "--repeat",
            str(args.repeat),
        ]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{part} failed:\n{out.stderr}")
        results[part] = json.loads(out.stdout.strip().splitlines()[-1])
    ms, scan = results["microseg"], results["scan"]
    print(f"customers: {ms['customers']:,}  transactions: {ms['transactions']:,}")
    for name, r in results.items():
        print(f"{name:10s} {r['seconds']:7.2f} s   peak RSS {r['max_rss_mb']:7.0f} MB")
    print(f"microseg summary step: {ms['summary_seconds']:.2f} s")
    print(f"cost vs bare DuckDB scan: {ms['seconds'] / scan['seconds']:.1f}x")
    print(f"warnings: {ms['warnings'] or 'none'}")
    if "lifetimes" in results:
        lt = results["lifetimes"]
        print(f"lifetimes summary step: {lt['summary_seconds']:.2f} s")
        print(f"speed-up vs lifetimes: {lt['seconds'] / ms['seconds']:.1f}x")
        print(f"peak memory microseg / lifetimes: {ms['max_rss_mb'] / lt['max_rss_mb']:.2f}")
        worst = max(abs(ms["params"][k] / lt["params"][k] - 1) for k in lt["params"])
        print(
            "parameters (microseg, lifetimes):",
            {k: (round(ms["params"][k], 5), round(lt["params"][k], 5)) for k in lt["params"]},
        )
        print(f"largest relative parameter difference: {worst:.2e}")
        print(f"total 12-month CLV: microseg {ms['clv_total']:,.0f}, lifetimes {lt['clv_total']:,.0f}")
    if args.workdir is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()

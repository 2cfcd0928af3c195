"""The manifest of a generated demo data set: settings, files and row counts."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from microseg.demo.groups import FORMATS, KINDS
from microseg.demo.shock import Shock
from microseg.demo.writers import _read_files

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class DemoManifest:
    """What :func:`generate_demo` wrote: where, with which settings, which files and how many rows.

    ``files`` and ``counts`` are keyed by kind: ``customers``, ``products``, the event kinds that
    were generated, ``truth`` and ``truth_pairs``. ``shock`` is the planted shock, if any.
    """

    out_dir: Path
    as_of: dt.date
    seed: int
    customers: int
    fmt: str
    years: float = 3.0
    kinds: tuple[str, ...] = KINDS
    files: dict[str, list[Path]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    shock: Shock | None = None

    MANIFEST_FILE: ClassVar[str] = "manifest.json"

    @property
    def ext(self) -> str:
        return FORMATS[self.fmt]

    def sources(self) -> dict[str, dict]:
        """Source definitions for a microseg project, with glob patterns relative to ``out_dir``.

        Truth files are not sources. The caller prefixes the paths with wherever ``out_dir`` is.
        """
        sources: dict[str, dict] = {
            "customers": {"path": f"customers*.{self.ext}", "kind": "customers"},
            "products": {"path": f"products.{self.ext}", "kind": "products"},
        }
        for kind in self.kinds:
            sources[kind] = {"path": f"{kind}-*.{self.ext}", "kind": "events"}
        return sources

    def truth(self) -> pd.DataFrame:
        """The planted truth, one row per customer, as a pandas DataFrame."""
        return _read_files(self.files["truth"], self.fmt).to_pandas()

    def truth_pairs(self) -> pd.DataFrame:
        """The planted co-purchase pairs (product_a, product_b, strength) as a DataFrame."""
        return _read_files(self.files["truth_pairs"], self.fmt).to_pandas()

    def to_json(self) -> str:
        data = {
            "as_of": self.as_of.isoformat(),
            "seed": self.seed,
            "customers": self.customers,
            "fmt": self.fmt,
            "years": self.years,
            "kinds": list(self.kinds),
            "files": {k: [p.name for p in v] for k, v in self.files.items()},
            "counts": self.counts,
        }
        # Only with a shock, so that manifests without one stay as they were.
        if self.shock is not None:
            data["shock"] = self.shock.to_dict()
        return json.dumps(data, indent=2)

    @classmethod
    def load(cls, out_dir: str | Path) -> DemoManifest:
        """Read the manifest that :func:`generate_demo` left in ``out_dir``."""
        out = Path(out_dir)
        data = json.loads((out / cls.MANIFEST_FILE).read_text())
        return cls(
            out_dir=out,
            as_of=dt.date.fromisoformat(data["as_of"]),
            seed=data["seed"],
            customers=data["customers"],
            fmt=data["fmt"],
            years=data["years"],
            kinds=tuple(data["kinds"]),
            files={k: [out / name for name in v] for k, v in data["files"].items()},
            counts=data["counts"],
            shock=Shock.from_dict(data["shock"]) if "shock" in data else None,
        )

"""microseg: customer micro-segmentation engine and customer data platform.

The public names are loaded on first use (PEP 562), so ``import microseg`` and the command line
start at once; ``microseg.Project`` brings in the data stack (pandas, DuckDB, Ibis) when asked for.

>>> import microseg
>>> sorted(microseg.EVENT_TYPES)[:3]
['app_event', 'cancellation', 'crm_update']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Where each public name lives.
_EXPORTS: dict[str, str] = {
    "EVENT_TYPES": "microseg.schema",
    "TABLES": "microseg.schema",
    "ConfigError": "microseg.errors",
    "ImportResult": "microseg.warehouse.ingest.files",
    "InvalidInputError": "microseg.errors",
    "MicrosegError": "microseg.errors",
    "MissingDependencyError": "microseg.errors",
    "NotFittedError": "microseg.errors",
    "Project": "microseg.project",
    "ProjectConfig": "microseg.config",
    "ProjectNotFoundError": "microseg.errors",
    "RunResult": "microseg.project",
    "SchemaError": "microseg.errors",
    "SourceError": "microseg.errors",
    "customer_summary": "microseg.features.summary",
    "generate_demo": "microseg.demo",
    "load_config": "microseg.config",
}

__all__ = [
    "EVENT_TYPES",
    "TABLES",
    "ConfigError",
    "ImportResult",
    "InvalidInputError",
    "MicrosegError",
    "MissingDependencyError",
    "NotFittedError",
    "Project",
    "ProjectConfig",
    "ProjectNotFoundError",
    "RunResult",
    "SchemaError",
    "SourceError",
    "__version__",
    "customer_summary",
    "generate_demo",
    "load_config",
]

if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from microseg.config import ProjectConfig, load_config
    from microseg.demo import generate_demo
    from microseg.errors import (
        ConfigError,
        InvalidInputError,
        MicrosegError,
        MissingDependencyError,
        NotFittedError,
        ProjectNotFoundError,
        SchemaError,
        SourceError,
    )
    from microseg.features.summary import customer_summary
    from microseg.project import Project, RunResult
    from microseg.schema import EVENT_TYPES, TABLES
    from microseg.warehouse.ingest.files import ImportResult


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'microseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

"""microseg: customer micro-segmentation engine and customer data platform.

>>> import microseg
>>> sorted(microseg.EVENT_TYPES)[:3]
['app_event', 'cancellation', 'crm_update']
"""

from microseg.config import ProjectConfig, load_config
from microseg.errors import (
    ConfigError,
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
from microseg.sources.files import ImportResult

__version__ = "0.1.0"

__all__ = [
    "EVENT_TYPES",
    "TABLES",
    "ConfigError",
    "ImportResult",
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


def __getattr__(name: str):
    # the generator pulls in more code than most users need: load it on first use
    if name == "generate_demo":
        from microseg.demo import generate_demo

        return generate_demo
    raise AttributeError(f"module 'microseg' has no attribute {name!r}")

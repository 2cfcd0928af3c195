"""One error root for microseg.

Every error knows the exit code the CLI uses and the HTTP status the web API answers with,
so front ends turn any failure into one shape without knowing the error's details.
"""

from __future__ import annotations


class MicrosegError(Exception):
    """Base class of every error microseg raises on purpose."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MicrosegError):
    """The project configuration is missing, unreadable or invalid.

    ``key`` is the dotted path of the offending setting (e.g. ``sources.shop.path``).
    """

    http_status = 400

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        where = ""
        if file:
            where += f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.key = key
        self.file = file


class ProjectNotFoundError(MicrosegError):
    """No ``microseg.toml`` was found where a project was expected."""

    http_status = 404


class SourceError(MicrosegError):
    """A data source cannot be read at all (missing file, unknown format, missing column).

    Problems with single rows never raise: those rows go to the quarantine table.
    """

    http_status = 422


class RejectedRowsError(SourceError):
    """An import finished, but more of a file's rows than its source allows
    (``max_rejected_share``) were quarantined. ``results`` are the imports over the limit."""

    def __init__(self, message: str, results: list | None = None) -> None:
        super().__init__(message)
        self.results = results or []


class SchemaError(MicrosegError):
    """Data does not fit a table contract."""

    http_status = 422


class MissingDependencyError(MicrosegError):
    """An optional dependency is needed; the message gives the exact install command."""

    http_status = 501

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f'{package} is required for this feature; install it with: pip install "microseg[{extra}]"'
        )
        self.package = package
        self.extra = extra


class NotFittedError(MicrosegError, ValueError):
    """An estimator was used before ``fit``."""

    http_status = 409


class InvalidInputError(MicrosegError, ValueError):
    """An argument or a name given by the user is not valid (an unknown layer, a bad value).

    A ``ValueError`` too, so code written for scikit-learn's conventions catches it.
    """

    http_status = 400


class WarehouseError(MicrosegError):
    """The warehouse cannot be written or read (a full disk, a damaged file)."""

    http_status = 507

"""The estimator contract every microseg model follows.

* ``__init__`` stores its keyword parameters unchanged (validated at ``fit``, not before);
* ``fit(...)`` learns state in attributes ending in ``_`` and returns ``self``;
* every method that needs learned state starts with ``self._check_fitted()``;
* parameters are declared in ``_constraints``; a bad value raises ``InvalidInputError`` (a
  ``ValueError``) naming the parameter, what is allowed and what was given.

>>> class Scale(Estimator):
...     _constraints = {"factor": Interval(0, None, closed="neither")}
...     def __init__(self, factor=1.0):
...         self.factor = factor
...     def fit(self, x):
...         self._validate_params()
...         self.scale_ = self.factor * max(x)
...         return self
>>> Scale(2).fit([1, 3]).scale_
6
>>> Scale(-1).fit([1])
Traceback (most recent call last):
...
microseg.errors.InvalidInputError: Scale: parameter 'factor' must be > 0, got -1
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from microseg.errors import InvalidInputError, NotFittedError


class Constraint:
    def accepts(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A real number between ``low`` and ``high`` (None: unbounded)."""

    low: float | None
    high: float | None
    closed: str = "both"  # both, left, right, neither
    integer: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if value != value:  # NaN
            return False
        low_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        high_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return low_ok and high_ok

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        left = ">=" if self.closed in ("both", "left") else ">"
        right = "<=" if self.closed in ("both", "right") else "<"
        if self.low is not None and self.high is not None:
            return f"{kind} with {self.low} {'<=' if left == '>=' else '<'} value {right} {self.high}"
        if self.low is not None:
            return f"{left} {self.low}" if not self.integer else f"{kind} {left} {self.low}"
        if self.high is not None:
            return f"{right} {self.high}" if not self.integer else f"{kind} {right} {self.high}"
        return kind


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Optional(Constraint):
    """None, or a value the inner constraint accepts."""

    inner: Constraint

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"


def require_columns(table: Any, needed: Iterable[str], owner: str) -> None:
    """Raise InvalidInputError naming the first of ``needed`` that ``table`` lacks.

    >>> import pandas as pd
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "profile")
    Traceback (most recent call last):
    ...
    microseg.errors.InvalidInputError: profile is missing column 'b' (columns: a)
    """
    columns = [str(c) for c in getattr(table, "columns", [])]
    for column in needed:
        if column not in columns:
            raise InvalidInputError(f"{owner} is missing column {column!r} (columns: {', '.join(columns)})")


class Estimator:
    """Base class of microseg's models."""

    _constraints: ClassVar[dict[str, Constraint]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        parameters = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in parameters if p.name != "self" and p.kind in kinds]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as given.

        ``deep`` is accepted for scikit-learn's ``clone``; no microseg model holds another
        estimator as a parameter, so deep and shallow are the same.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InvalidInputError(
                    f"{type(self).__name__}: unknown parameter {name!r}; parameters: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        for name, constraint in self._constraints.items():
            value = getattr(self, name)
            if not constraint.accepts(value):
                raise InvalidInputError(
                    f"{type(self).__name__}: parameter {name!r} must be {constraint.describe()}, got {value!r}"
                )

    def _is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(...) first")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

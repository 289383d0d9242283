"""The suite's expectations checked on the typed frame in pandas/NumPy, one pass per column.

Gives each expectation the verdict Great Expectations 1.x gives it on the same frame (its
pandas execution engine: `ColumnMapExpectation._validate`, the `column_values.*` map
metrics, `_mostly_success`): the same rows flagged, the same row and NULL counts, the same
success. What it does not know how to check exactly as GX does (a column missing, a type
or a row condition other than the ones the contract builds) it declines: `evaluate` returns
None and the suite runs on GX instead. `tests/test_vectorized.py` holds both engines to
the same reports, rejects and reasons.

Without it, GX copies the whole frame for every filtered domain (the rows not NULL, the
window's rows), hashes the frame to name the batch, and checks a `datetime64[us]` column
value by value in Python (it vectorizes nanosecond columns only): ~60 % of validate's time,
and 130 MiB of imports in the task process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from citypulse.pipeline.validate.expectations import Expectation, Verdict

_EQUALS = re.compile(r'^\s*(\w+)\s*==\s*"([^"]*)"\s*$')  # col=="value", as WINDOW_ROWS


class Declined(Exception):
    """An expectation this engine does not check exactly as GX does."""


def evaluate(expectations: Sequence[Expectation], frame: pd.DataFrame) -> list[Verdict] | None:
    """Each expectation's verdict on `frame` (index 0..n-1), in order; None when one of
    them must be left to GX."""
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        return None
    try:
        return [_verdict(e, frame) for e in expectations]
    except Declined:
        return None


def _verdict(expectation: Expectation, frame: pd.DataFrame) -> Verdict:
    n = len(frame)
    if expectation.type == "expect_column_to_exist":
        if set(expectation.kwargs) - {"mostly"}:
            raise Declined(expectation.type)
        return Verdict(expectation, expectation.column in frame.columns, None, 0, np.zeros(n, bool))
    check = _MAPS.get(expectation.type)
    if check is None or expectation.column not in frame.columns:
        raise Declined(expectation.type)  # GX raises on a missing column: let it say so
    known = {"row_condition", "condition_parser", "mostly"} | _ARGUMENTS[expectation.type]
    if set(expectation.kwargs) - known:
        raise Declined(expectation.type)
    domain = _domain(expectation, frame)  # the rows the expectation considers
    values = frame[expectation.column]
    if domain is not None:
        values = values[domain]
    null = values.isna().to_numpy(dtype=bool)
    rows = len(values)
    # Map metrics see the values not NULL (not_null sees them all): flagged among those.
    flagged = check(values, null, expectation.kwargs)
    unexpected = np.zeros(n, dtype=bool)
    positions = np.arange(n) if domain is None else np.flatnonzero(domain)
    unexpected[positions[flagged]] = True
    # not_null counts no NULLs as missing: its share is of all rows (its own `_validate`).
    missing = 0 if check is _not_null else int(null.sum())
    considered = rows - missing
    if rows == 0 or considered == 0:
        success = True  # vacuously, as GX
    else:
        count = float(flagged.sum())
        success = (float(considered) - count) / float(considered) >= expectation.mostly
    return Verdict(expectation, success, rows, missing, unexpected)


def _domain(expectation: Expectation, frame: pd.DataFrame) -> np.ndarray | None:
    """The rows a row condition keeps (`DataFrame.query` of `col=="value"`), or None."""
    condition = expectation.kwargs.get("row_condition")
    if condition is None:
        return None
    match = _EQUALS.match(condition) if isinstance(condition, str) else None
    if (
        match is None
        or expectation.kwargs.get("condition_parser") != "pandas"
        or match[1] not in frame.columns
    ):
        raise Declined(str(condition))
    column = frame[match[1]]
    if not (pd.api.types.is_string_dtype(column.dtype) or column.dtype == object):
        raise Declined(str(column.dtype))
    return (column == match[2]).fillna(False).to_numpy(dtype=bool)


def _not_null(values: pd.Series, null: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    return null


def _in_set(values: pd.Series, null: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    value_set = kwargs.get("value_set")
    if value_set is None:
        return np.zeros(len(values), dtype=bool)
    return ~null & ~values.isin(value_set).to_numpy(dtype=bool)


def _unique(values: pd.Series, null: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    flagged = np.zeros(len(values), dtype=bool)
    present = ~null
    flagged[present] = values[present].duplicated(keep=False).to_numpy(dtype=bool)
    return flagged


def _between(values: pd.Series, null: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_min, strict_max = kwargs.get("strict_min"), kwargs.get("strict_max")
    if low is None or high is None or isinstance(low, str) or isinstance(high, str):
        raise Declined("between: bounds")  # GX parses or rejects these: leave them to it
    dtype = values.dtype
    if not (
        pd.api.types.is_float_dtype(dtype)
        or pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_datetime64_dtype(dtype)
        or isinstance(dtype, pd.DatetimeTZDtype)
    ):
        raise Declined(f"between: {dtype}")
    if low > high:
        raise Declined("between: min_value > max_value")  # GX raises
    present = values[~null]
    above = present > low if strict_min else present >= low
    below = present < high if strict_max else present <= high
    flagged = np.zeros(len(values), dtype=bool)
    flagged[~null] = ~(above & below).to_numpy(dtype=bool)
    return flagged


_MAPS: dict[str, Callable[[pd.Series, np.ndarray, dict[str, Any]], np.ndarray]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_unique": _unique,
    "expect_column_values_to_be_between": _between,
}
_ARGUMENTS: dict[str, set[str]] = {
    "expect_column_values_to_not_be_null": set(),
    "expect_column_values_to_be_in_set": {"value_set"},
    "expect_column_values_to_be_unique": set(),
    "expect_column_values_to_be_between": {"min_value", "max_value", "strict_min", "strict_max"},
}

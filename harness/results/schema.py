"""Stored records read back with every value's type checked against the dataclass that defines them.

Each kind of stored record - the results record (:class:`harness.results.records.Record`), the
kernel-profile record, any kind added later - is a dataclass whose type hints are its schema, and
:func:`build` reads a decoded JSON value against those hints. The first value that does not fit raises
:class:`SchemaError` naming the field by its path (``config.mode``, ``latencies_s[3]``,
``contended.reasons``), so a damaged line is refused where it is read and named there, instead of
reaching a reader as a wrongly typed value (a pandas column of mixed types, a number compared with a
time stamp, a ``None`` where a configuration belongs).

The rules follow how the harness writes JSON (:mod:`harness.jsonout`):

- ``int``: a JSON integer (never ``true``/``false``) in the signed 64-bit range (what pandas, parquet and
  NVML's counters hold);
- ``float``: a JSON number that is a finite double; a plain ``float`` field may also hold ``null``, read as
  NaN, because jsonout writes every non-finite float as ``null``;
- ``str``, ``bool``, ``None``, ``Literal[...]`` (one of the values listed), ``X | Y``;
- ``list[T]``, ``dict[str, T]``: every item checked; ``Any``: taken as it is;
- a dataclass: a JSON object; a field without a default must be present; keys the dataclass does not
  know are ignored (what a newer writer added);
- a ``TypedDict``: a JSON object whose annotated keys are checked (required ones must be present); its
  other keys are kept as they are;
- ``Annotated[T, check, ...]``: ``T``, then each ``check(value)``, which returns None or why the value is wrong.

Nothing here recurses into an ``Any`` value, so the depth of a check is the depth of the schema.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from datetime import datetime, timezone
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

INT64_LIMIT = 2**63


class SchemaError(ValueError):
    """A value that does not fit its record's schema; ``field`` is its path (empty: the record itself)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}" if field else reason)


def loads(raw: bytes) -> Any:
    """A stored JSON document as the harness writes it: UTF-8, no NaN or Infinity (jsonout writes null),
    nesting within Python's limits. ValueError otherwise (UnicodeDecodeError is one)."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_not_json)
    except RecursionError:
        raise ValueError("JSON nested too deeply to be a record") from None


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON (the harness writes non-finite numbers as null)")


def build(schema: Any, value: Any, path: str = "") -> Any:
    """``value`` (decoded JSON) as ``schema`` describes it: a dataclass built, numbers checked, the rest
    as it is. Raises :class:`SchemaError` at the first value that does not fit."""
    origin = get_origin(schema)
    if schema is Any:
        return value
    if origin is Annotated:
        result = build(schema.__origin__, value, path)
        for check in schema.__metadata__:
            reason = check(result) if callable(check) else None
            if reason:
                raise SchemaError(path, reason)
        return result
    if origin is Union or origin is types.UnionType:
        return _union(get_args(schema), value, path)
    if schema is float:
        return math.nan if value is None else _float(value, path)
    if not _fits(schema, value):
        raise SchemaError(path, f"expected {describe(schema)}, got {shown(value)}")
    if schema is int:
        if not -INT64_LIMIT <= value < INT64_LIMIT:
            raise SchemaError(path, f"{shown(value)} is outside the range of a 64-bit integer")
        return value
    if origin is list:
        (item,) = get_args(schema) or (Any,)
        return [build(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        item = (get_args(schema) or (str, Any))[1]
        return {k: build(item, v, _member(path, k)) for k, v in value.items()}
    if is_typeddict(schema):
        return _typed_dict(schema, value, path)
    if dataclasses.is_dataclass(schema):
        return _dataclass(schema, value, path)
    return value


def _union(arms: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None and type(None) in arms:
        return None
    fitting = [arm for arm in arms if arm is not type(None) and _fits(arm, value)]
    if not fitting:
        raise SchemaError(path, f"expected {' or '.join(describe(a) for a in arms)}, got {shown(value)}")
    return build(fitting[0], value, path)


def _fits(schema: Any, value: Any) -> bool:
    """Whether ``value`` is of the JSON kind ``schema`` wants (its items are checked after)."""
    origin = get_origin(schema)
    if origin is Annotated:
        return _fits(schema.__origin__, value)
    if schema is Any:
        return True
    if origin is Union or origin is types.UnionType:
        return any(_fits(arm, value) for arm in get_args(schema))
    if origin is Literal:
        return any(type(value) is type(choice) and value == choice for choice in get_args(schema))
    if schema is type(None) or schema is None:
        return value is None
    if schema is bool:
        return isinstance(value, bool)
    if schema is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if schema is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if schema is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list)
    if origin is dict or is_typeddict(schema) or dataclasses.is_dataclass(schema):
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    raise TypeError(f"schema type {schema!r} is not supported")  # a programming error, not a damaged record


def _float(value: Any, path: str) -> float:
    if not _fits(float, value):
        raise SchemaError(path, f"expected a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SchemaError(path, f"{shown(value)} is not a finite double")
    return number


def _typed_dict(schema: Any, value: dict[str, Any], path: str) -> dict[str, Any]:
    hints = _hints(schema)
    out = dict(value)
    for key, hint in hints.items():
        if key in value:
            out[key] = build(hint, value[key], _member(path, key))
        elif key in schema.__required_keys__:
            raise SchemaError(_member(path, key), "missing")
    return out


def _dataclass(schema: Any, value: dict[str, Any], path: str) -> Any:
    hints = _hints(schema)
    kwargs = {}
    for f in dataclasses.fields(schema):
        if not f.init:
            continue
        if f.name in value:
            kwargs[f.name] = build(hints[f.name], value[f.name], _member(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SchemaError(_member(path, f.name), "missing")
    try:
        return schema(**kwargs)
    except (TypeError, ValueError) as exc:  # the dataclass's own checks (__post_init__)
        raise SchemaError(path, " ".join(str(exc).split())) from None


@cache
def _hints(schema: Any) -> dict[str, Any]:
    return get_type_hints(schema, include_extras=True)


def _member(path: str, key: str) -> str:
    name = key if key.isidentifier() and len(key) <= 40 else repr(key[:40])
    return f"{path}.{name}" if path else name


def describe(schema: Any) -> str:
    """What a schema type asks for, in words."""
    origin = get_origin(schema)
    if origin is Annotated:
        return describe(schema.__origin__)
    if origin is Union or origin is types.UnionType:
        return " or ".join(describe(arm) for arm in get_args(schema))
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in get_args(schema))
    words = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object"}
    if schema in words:
        return words[schema]
    if origin in words:
        return words[origin]
    return "an object"


def shown(value: Any) -> str:
    """A JSON value as an error message quotes it: its kind, and the value itself when it is short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


# ---- time stamps ---------------------------------------------------------------------------------------

def parse_timestamp(text: str) -> datetime | None:
    """An ISO 8601 time stamp as an aware datetime (one without a zone is taken as UTC, as the harness
    writes UTC); None when ``text`` is not one."""
    try:
        stamp = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def iso_timestamp(value: str) -> str | None:
    """The check of :data:`Timestamp`."""
    return None if parse_timestamp(value) is not None else f"{shown(value)} is not an ISO 8601 time stamp"


#: a record's time stamp: ISO 8601 text (harness.results.records.utc_now writes them)
Timestamp = Annotated[str, iso_timestamp]


def _present(value: float) -> str | None:
    return "expected a number, got null" if math.isnan(value) else None


#: a number that must be there: a float field where null (NaN) is refused
StrictFloat = Annotated[float, _present]

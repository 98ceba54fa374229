"""Convert run data to CEL values and CEL results back to plain Python values."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from celpy import celtypes

from cloudfunctions.cel import messages as msg
from cloudfunctions.cel.errors import TYPE, CelError


class Unsupported(Exception):
    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def to_cel(value: Any, where: str) -> Any:
    try:
        return convert_in(value)
    except Unsupported as error:
        detail = msg.UNSUPPORTED_INPUT.format(where=where, type=error.type_name)
    except ValueError:
        detail = msg.INPUT_OUT_OF_RANGE.format(where=where)
    except RecursionError:
        detail = msg.TOO_COMPLEX
    raise CelError(detail, kind=TYPE)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TRUE = celtypes.BoolType(True)
_FALSE = celtypes.BoolType(False)


def convert_in(value: Any) -> Any:
    # The base-class constructors skip celtypes' own, which re-check and re-wrap every value
    # and made converting an event payload cost more than evaluating the expression.
    if isinstance(value, str):
        return str.__new__(celtypes.StringType, value)
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("out of range")
        return int.__new__(celtypes.IntType, value)
    if isinstance(value, float):
        return float.__new__(celtypes.DoubleType, value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        converted = celtypes.MapType()
        dict.update(converted, {convert_in(k): convert_in(v) for k, v in value.items()})
        return converted
    if isinstance(value, list | tuple):
        return celtypes.ListType([convert_in(item) for item in value])
    if isinstance(value, bytes):
        return celtypes.BytesType(value)
    if isinstance(value, datetime.datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, datetime.timedelta):
        return celtypes.DurationType(value)
    raise Unsupported(type(value).__name__)


def from_cel(value: Any) -> Any:
    try:
        return convert_out(value)
    except Unsupported as error:
        detail = msg.UNSUPPORTED_RESULT.format(type=error.type_name)
    except UnicodeDecodeError:
        detail = msg.BYTES_NOT_UTF8
    except RecursionError:
        detail = msg.TOO_COMPLEX
    raise CelError(detail, kind=TYPE)


def convert_out(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool | celtypes.BoolType):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value).decode("utf-8")
    if isinstance(value, Mapping):
        return {convert_out(k): convert_out(v) for k, v in value.items()}
    if isinstance(value, list):
        return [convert_out(item) for item in value]
    if isinstance(value, datetime.datetime | datetime.timedelta):
        # celpy renders timestamps as RFC 3339 and durations as "3600s", as CEL does.
        return str(value)
    raise Unsupported(cel_type_name(value))


_CEL_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (celtypes.BoolType, "bool"),
    (celtypes.UintType, "uint"),
    (int, "int"),
    (float, "double"),
    (str, "string"),
    (bytes, "bytes"),
    (datetime.datetime, "timestamp"),
    (datetime.timedelta, "duration"),
    (Mapping, "map"),
    (list, "list"),
    (type(None), "null"),
)


def cel_type_name(value: Any) -> str:
    for kind, name in _CEL_TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return "type" if isinstance(value, type) else "value of another kind"

"""Reading loosely typed JSON into typed values, with the field path in every error.

Clients in the wild send numbers as strings (`"type":"1"`, `"flowId":"13774"`), booleans as
strings, and JSON documents inside strings (`parameters`, `runMode`). `FieldReader` coerces what is
unambiguous and rejects the rest with an `InvalidParameter` whose message starts with the path of
the field (`flowJson.tasks[2].timeout: -5 is out of range 0-604800`), so a user can find it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from batchd.errors import InvalidParameter

T = TypeVar("T")

_MISSING = object()
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def show(value: Any) -> str:
    """A value as the user wrote it, JSON-quoted so `""` and `"5"` are visible as strings."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_int(value: Any, path: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer from an int, an integral float, or a string of digits; range-checked."""
    if isinstance(value, bool):
        raise InvalidParameter(f"{path}: {show(value)} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _is_integer_text(value.strip()):
        text = value.strip()
        # Past 19 digits it cannot fit; checked first, as int() refuses texts over 4,300 digits.
        number = int(text) if len(text.lstrip("+-").lstrip("0")) <= 19 else INT64_MAX + 1
    else:
        raise InvalidParameter(f"{path}: {show(value)} is not an integer")
    if not INT64_MIN <= number <= INT64_MAX:
        # Every integer the API takes ends up in a BIGINT column or an SQL LIMIT/OFFSET.
        raise InvalidParameter(f"{path}: {show(value)} is outside the 64-bit integer range")
    _check_range(number, path, low, high)
    return number


def to_float(value: Any, path: str, *, low: float | None = None, high: float | None = None) -> float:
    """A finite number from an int, a float or a numeric string; range-checked."""
    if isinstance(value, bool):
        raise InvalidParameter(f"{path}: {show(value)} is not a number")
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidParameter(f"{path}: {show(value)} is not a number")
    _check_range(number, path, low, high)
    return number


def to_bool(value: Any, path: str) -> bool:
    """true/false, also as the strings "true"/"false" or the numbers 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1"):
        return value.strip().lower() in ("true", "1")
    raise InvalidParameter(f"{path}: {show(value)} is not a boolean")


def _is_integer_text(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isascii() and digits.isdigit()


def _check_range(number: float, path: str, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and not low <= number <= high:
        raise InvalidParameter(f"{path}: {_num(number)} is out of range {_num(low)}-{_num(high)}")
    if low is not None and number < low:
        raise InvalidParameter(f"{path}: {_num(number)} is below {_num(low)}")
    if high is not None and number > high:
        raise InvalidParameter(f"{path}: {_num(number)} is above {_num(high)}")


def _num(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


class FieldReader:
    """Typed access to the fields of one JSON object, knowing its own path for messages.

    `required=True` rejects an absent field and a JSON null; otherwise both give `default`.
    """

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, Mapping):
            where = path or "body"
            raise InvalidParameter(f"{where}: {show(data)} is not a JSON object")
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, *, required: bool = False, default: Any = None) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise InvalidParameter(f"{self.at(key)}: is required")
            return default
        return value

    def text(self, key: str, *, required: bool = False, default: str = "", non_empty: bool = False,
             max_length: int = 4096) -> str:
        value = self.raw(key, required=required, default=default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidParameter(f"{self.at(key)}: {show(value)} is not a string")
        if "\x00" in value:  # PostgreSQL text cannot hold NUL; no field of ours needs it
            raise InvalidParameter(f"{self.at(key)}: must not contain a NUL character")
        if non_empty and not value.strip():
            raise InvalidParameter(f"{self.at(key)}: must not be empty")
        if len(value) > max_length:
            raise InvalidParameter(f"{self.at(key)}: is longer than {max_length} characters")
        return value

    def integer(self, key: str, *, required: bool = False, default: int = 0,
                low: int | None = None, high: int | None = None) -> int:
        value = self.raw(key, required=required, default=_MISSING)
        if value is _MISSING or (isinstance(value, str) and not value.strip() and not required):
            return default
        return to_int(value, self.at(key), low=low, high=high)

    def number(self, key: str, *, default: float, low: float | None = None,
               high: float | None = None) -> float:
        value = self.raw(key, default=_MISSING)
        if value is _MISSING:
            return default
        return to_float(value, self.at(key), low=low, high=high)

    def boolean(self, key: str, *, default: bool = False) -> bool:
        value = self.raw(key, default=_MISSING)
        return default if value is _MISSING else to_bool(value, self.at(key))

    def objects(self, key: str) -> list[FieldReader]:
        """The items of an array of objects; absent or null is an empty list."""
        value = self.raw(key, default=[])
        if not isinstance(value, list):
            raise InvalidParameter(f"{self.at(key)}: {show(value)} is not an array")
        return [FieldReader(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    def embedded_json(self, key: str, *, default: str) -> tuple[Any, str]:
        """A JSON document transported inside a string field: (parsed value, original text).

        An empty string means the default. A real JSON value instead of a string is accepted too
        (some clients send the array itself) and re-encoded compactly for export.
        """
        value = self.raw(key, default=default)
        if not isinstance(value, str):
            if isinstance(value, (list, dict)):
                return value, json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            raise InvalidParameter(f"{self.at(key)}: {show(value)} is not a JSON string")
        source = value if value.strip() else default
        try:
            return json.loads(source), value
        except json.JSONDecodeError as error:
            raise InvalidParameter(
                f"{self.at(key)}: invalid JSON inside the string: {error.msg} "
                f"at line {error.lineno} column {error.colno}"
            ) from None


def sorters(pagination: FieldReader | None, allowed: Mapping[str, T], hint: str) -> list[tuple[T, bool]]:
    """The `pagination.sorters` of a search body as (sort key, descending) pairs, in order.

    `allowed` maps every accepted field name (camelCase and snake_case alike) to the caller's
    sort key; an unknown name is EnOS's 62102 "The sorters field parameter is invalid", followed
    by `hint` (which names to use). `order` is ASC (default) or DESC, in any case.
    """
    result: list[tuple[T, bool]] = []
    for i, sorter in enumerate(pagination.objects("sorters") if pagination else []):
        name = sorter.text("field", required=True)
        if name not in allowed:
            raise InvalidParameter(
                f"pagination.sorters[{i}].field: The sorters field parameter is invalid: {show(name)} ({hint})"
            )
        direction = sorter.text("order", default="ASC").strip().upper() or "ASC"
        if direction not in ("ASC", "DESC"):
            raise InvalidParameter(f"pagination.sorters[{i}].order: {show(direction)} is not ASC or DESC")
        result.append((allowed[name], direction == "DESC"))
    return result

"""The Query API's pure pieces, for the fake in thehive.py: filters, sort, page,
excludeFields and the error for an unknown query (TheHive 5.7.3 OpenAPI,
https://docs.strangebee.com/thehive/api-docs/docs.yaml; thehive4py query/filters.py,
https://github.com/TheHive-Project/TheHive4py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from .json_types import JsonObject
from .thehive_checks import (
    MAX_INT,
    TheHiveError,
    attribute_checking_error,
    attribute_error,
    bad_request,
    echo_value,
    is_int,
)

MAX_FILTER_DEPTH = 32


def unknown_query(name: str) -> TheHiveError:
    return attribute_checking_error(
        [
            attribute_error(
                "InvalidFormatAttributeError",
                "query",
                f"Invalid format for query: {echo_value(name)}, "
                "expected a query of the current step",
            )
        ]
    )


def without_fields(record: JsonObject, excluded: Sequence[str]) -> JsonObject:
    return {key: copy.deepcopy(value) for key, value in record.items() if key not in excluded}


# -- Query API: filters, sort, page -----------------------------------------------------------

Predicate = Callable[[JsonObject], bool]
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "_eq": lambda held, wanted: held == wanted,
    "_is": lambda held, wanted: held == wanted,
    "_lt": lambda held, wanted: held < wanted,
    "_gt": lambda held, wanted: held > wanted,
    "_lte": lambda held, wanted: held <= wanted,
    "_gte": lambda held, wanted: held >= wanted,
    "_startsWith": lambda held, wanted: held.startswith(wanted),
    "_endsWith": lambda held, wanted: held.endswith(wanted),
    "_like": lambda held, wanted: wanted.lower() in held.lower(),
    "_match": lambda held, wanted: set(wanted.lower().split()) <= set(held.lower().split()),
}
_TEXT_ONLY = frozenset({"_startsWith", "_endsWith", "_like", "_match"})


def compile_filter(expression: Any, depth: int = 0) -> Predicate:
    """A predicate for one filter ({"_eq": {...}}, {"_and": [...]}, ...); a `filter`
    operation is accepted too (its `_name` is ignored). 400 for anything malformed."""
    if depth > MAX_FILTER_DEPTH:
        raise bad_request(f"Filters nest at most {MAX_FILTER_DEPTH} deep")
    is_object = isinstance(expression, dict)
    operators = [key for key in expression if key != "_name"] if is_object else []
    if len(operators) != 1:
        raise bad_request("A filter is an object with exactly one operator")
    operator = operators[0]
    argument = expression[operator]
    if operator in ("_and", "_or"):
        return _combine(operator, argument, depth)
    if operator == "_not":
        inner = compile_filter(argument, depth + 1)
        return lambda record: not inner(record)
    if operator == "_any":
        return lambda record: True
    if operator == "_id":
        if not isinstance(argument, str):
            raise bad_request("_id takes a string")
        return lambda record: record.get("_id") == argument
    if operator in ("_has", "_contains"):
        name = argument.get("_field") if isinstance(argument, dict) else argument
        if not isinstance(name, str):
            raise bad_request(f"{operator} takes a field name")
        return lambda record: name in record
    return _field_filter(operator, argument)


def _combine(operator: str, argument: Any, depth: int) -> Predicate:
    if not isinstance(argument, list):
        raise bad_request(f"{operator} takes an array of filters")
    parts = [compile_filter(item, depth + 1) for item in argument]
    if operator == "_and":
        return lambda record: all(part(record) for part in parts)
    return lambda record: any(part(record) for part in parts)


def _field_filter(operator: str, argument: Any) -> Predicate:
    if operator == "_in":
        name, values = _field_argument(argument, "_values")
        if not isinstance(values, list) or not all(_filter_value_ok(v) for v in values):
            raise bad_request("_in takes _values, an array of strings, numbers or booleans")
        return lambda record: any(_held_matches(record, name, "_eq", value) for value in values)
    if operator == "_between":
        name, low = _field_argument(argument, "_from")
        high = argument.get("_to")
        if not _filter_value_ok(low) or not _filter_value_ok(high):
            raise bad_request("_between takes _from and _to (relative dates are not supported)")
        return lambda record: (
            _held_matches(record, name, "_gte", low) and _held_matches(record, name, "_lt", high)
        )
    if operator not in _COMPARISONS and operator != "_ne":  # _ne: not _eq, below
        raise bad_request(f"Unknown filter operator {echo_value(operator)}")
    name, value = _field_argument(argument, "_value")
    if not _filter_value_ok(value) or (operator in _TEXT_ONLY and not isinstance(value, str)):
        raise bad_request(
            f"{operator} takes a string, number or boolean _value "
            "(relative dates are not supported by this fake)"
        )
    if operator == "_ne":
        return lambda record: not _held_matches(record, name, "_eq", value)
    return lambda record: _held_matches(record, name, operator, value)


def _field_argument(argument: Any, value_key: str) -> tuple[str, Any]:
    """(field, value) of {"_field": f, value_key: v}, or of the short form {f: v}."""
    if isinstance(argument, dict) and isinstance(argument.get("_field"), str):
        return argument["_field"], argument.get(value_key)
    if isinstance(argument, dict) and len(argument) == 1:
        ((name, value),) = argument.items()
        if isinstance(name, str) and not name.startswith("_"):
            return name, value
    raise bad_request(f'A filter takes {{"_field": name, "{value_key}": value}}')


def _filter_value_ok(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | float) or is_int(value)


def _held_matches(record: JsonObject, name: str, operator: str, wanted: Any) -> bool:
    """A multi-valued field (tags) matches when one of its values does."""
    if name not in record:
        return False
    held = record[name]
    values = held if isinstance(held, list) else [held]
    return any(_compare(operator, value, wanted) for value in values)


def _compare(operator: str, held: Any, wanted: Any) -> bool:
    if isinstance(held, bool) != isinstance(wanted, bool):
        return False  # True is not 1 here
    if operator in _TEXT_ONLY and not isinstance(held, str):
        return False
    try:
        return bool(_COMPARISONS[operator](held, wanted))
    except TypeError:  # a string compared with a number: no match, as in an index
        return False


def sort_records(records: list[JsonObject], fields: Any) -> list[JsonObject]:
    """Sorted by [{field: "asc"|"desc"}, ...]: the first field first, records missing the
    field last."""
    if not isinstance(fields, list) or not fields:
        raise bad_request('sort takes "_fields": [{"<field>": "asc" | "desc"}, ...]')
    ordered = list(records)
    for item in reversed(fields):  # stable sorts, least significant key first
        if not isinstance(item, dict) or len(item) != 1:
            raise bad_request('Each sort field is {"<field>": "asc" | "desc"}')
        ((name, direction),) = item.items()
        if direction not in ("asc", "desc"):
            raise bad_request(f"Sort direction {echo_value(direction)} is not asc or desc")
        ordered = _sorted_by(ordered, name, descending=direction == "desc")
    return ordered


def _sorted_by(records: list[JsonObject], name: str, *, descending: bool) -> list[JsonObject]:
    present = [record for record in records if record.get(name) is not None]
    missing = [record for record in records if record.get(name) is None]
    present.sort(key=lambda record: _sort_key(record[name]), reverse=descending)
    return present + missing


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings before anything else, so mixed types never raise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, repr(value))


def page_records(records: list[JsonObject], operation: JsonObject) -> list[JsonObject]:
    """records[from:to]; `extraData` names are accepted (every extraData here is {})."""
    start, end = operation.get("from"), operation.get("to")
    if not (isinstance(start, int) and isinstance(end, int) and is_int(start) and is_int(end)):
        raise bad_request('page takes integers "from" and "to"')
    if not 0 <= start <= end <= MAX_INT:
        raise bad_request('page takes 0 <= "from" <= "to"')
    extra = operation.get("extraData", [])
    if not isinstance(extra, list) or not all(isinstance(name, str) for name in extra):
        raise bad_request("page extraData must be an array of strings")
    return records[start:end]

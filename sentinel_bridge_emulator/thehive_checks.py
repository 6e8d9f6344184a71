"""TheHive's error answers and the validation of input bodies, for the fake in thehive.py.

The limits are those of the TheHive 5.7.3 OpenAPI input schemas (InputCreateAlert,
InputUpdateAlert, InputUpdateCase, InputComment, InputCreateObservable;
https://docs.strangebee.com/thehive/api-docs/docs.yaml); the error types and the
AttributeCheckingError `errors` list are ScalliGraph's
(https://github.com/TheHive-Project/ScalliGraph, core/src/main/scala/org/thp/scalligraph/
Errors.scala). thehive.py's docstring lists every source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .json_types import JsonObject

MAX_LONG = 2**63 - 1
MAX_INT = 2**31 - 1
_ECHO_LIMIT = 64  # characters of a refused value quoted back in an error message


class TheHiveError(Exception):
    """An answer TheHive gives as `{"type": ..., "message": ...}` (plus `extra` fields)."""

    def __init__(
        self, status: int, type_: str, message: str, extra: JsonObject | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.extra = extra or {}

    def body(self) -> JsonObject:
        return {"type": self.type, "message": self.message, **self.extra}


def bad_request(message: str) -> TheHiveError:
    return TheHiveError(400, "BadRequest", message)


def not_found(entity: str, id_or_name: str) -> TheHiveError:
    return TheHiveError(404, "NotFoundError", f"{entity} {echo_value(id_or_name)} not found")


def imported_by_thehive() -> TheHiveError:
    return bad_request("The Imported status is set by TheHive when an alert goes into a case")


def authentication_failure() -> TheHiveError:
    return TheHiveError(401, "AuthenticationError", "Authentication failure")


# -- validation of input bodies -------------------------------------------------------------

# A check answers None for a valid value, else the expected format (for the error message).
Check = Callable[[Any], str | None]


def _text(min_length: int, max_length: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and min_length <= len(value) <= max_length:
            return None
        return f"string of {min_length} to {max_length} characters"

    return check


def _one_of(*allowed: int) -> Check:
    def check(value: Any) -> str | None:
        if is_int(value) and value in allowed:
            return None
        return "one of " + ",".join(str(item) for item in allowed)

    return check


def _long(value: Any) -> str | None:
    return None if is_int(value) and 0 <= value <= MAX_LONG else "date (milliseconds)"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "boolean"


def _tags(value: Any) -> str | None:
    if isinstance(value, list) and all(_text(1, 128)(tag) is None for tag in value):
        return None
    return "array of strings of 1 to 128 characters"


def _objects(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return None
    return "array of objects"


def _custom_fields(value: Any) -> str | None:
    """Either {"name": value or [values]} or [{"name", "value", "order"?}] (OpenAPI)."""
    if isinstance(value, dict):
        ok = all(_text(1, 64)(name) is None and _custom_value_ok(v) for name, v in value.items())
    elif isinstance(value, list):
        ok = all(_custom_entry_ok(entry) for entry in value)
    else:
        ok = False
    return None if ok else 'object {"name": value} or array of {"name", "value", "order"}'


def _custom_entry_ok(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and set(entry) <= {"name", "value", "order"}
        and _text(1, 64)(entry.get("name")) is None
        and _scalar_ok(entry.get("value"))
        and ("order" not in entry or (is_int(entry["order"]) and abs(entry["order"]) <= MAX_INT))
    )


def _custom_value_ok(value: Any) -> bool:
    if isinstance(value, list):
        return all(_scalar_ok(item) for item in value)
    return _scalar_ok(value)


def _scalar_ok(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= 1_048_576
    if is_int(value):
        return bool(abs(value) <= MAX_LONG)
    return value is None or isinstance(value, bool | float)


def _observable_data(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= 4096:
        return None
    if isinstance(value, list) and value and all(_text(1, 4096)(item) is None for item in value):
        return None
    return "string, or array of strings of 1 to 4096 characters"


def _nullable(check: Check) -> Check:
    def nullable(value: Any) -> str | None:
        return None if value is None else check(value)

    return nullable


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


LONG_TEXT = _text(0, 1_048_576)
SEVERITY = _one_of(1, 2, 3, 4)
TLP = _one_of(0, 1, 2, 3, 4)
PAP = _one_of(0, 1, 2, 3)
STATUS = _text(1, 64)
USER = _text(1, 128)

_ALERT_COMMON: dict[str, Check] = {
    "type": _text(1, 32),
    "source": _text(1, 32),
    "sourceRef": _text(1, 128),
    "externalLink": _text(1, 4096),
    "title": _text(1, 512),
    "description": LONG_TEXT,
    "severity": SEVERITY,
    "date": _long,
    "tags": _tags,
    "tlp": TLP,
    "pap": PAP,
    "customFields": _custom_fields,
    "summary": LONG_TEXT,
    "status": STATUS,
}
ALERT_CREATE_FIELDS: dict[str, Check] = {
    **_ALERT_COMMON,
    "flag": _boolean,
    "assignee": USER,
    "caseTemplate": _text(1, 128),
    "observables": _objects,
    "procedures": _objects,  # accepted (thehive4py sends it), not modelled
}
ALERT_REQUIRED = ("type", "source", "sourceRef", "title", "description")
ALERT_UPDATE_FIELDS: dict[str, Check] = {
    **_ALERT_COMMON,
    "lastSyncDate": _long,
    "follow": _boolean,
    "assignee": _nullable(USER),
    "addTags": _tags,
    "removeTags": _tags,
}
CASE_UPDATE_FIELDS: dict[str, Check] = {
    "title": _text(1, 512),
    "description": LONG_TEXT,
    "severity": SEVERITY,
    "startDate": _long,
    "endDate": _long,
    "tags": _tags,
    "flag": _boolean,
    "tlp": TLP,
    "pap": PAP,
    "status": STATUS,
    "summary": _nullable(LONG_TEXT),
    "assignee": _nullable(USER),
    "impactStatus": _nullable(_text(1, 128)),
    "customFields": _custom_fields,
    "taskRule": _text(1, 128),
    "observableRule": _text(1, 128),
    "addTags": _tags,
    "removeTags": _tags,
}
CASE_FROM_ALERT_FIELDS: dict[str, Check] = {
    key: CASE_UPDATE_FIELDS[key]
    for key in ("title", "description", "severity", "startDate", "endDate", "tags", "flag",
                "tlp", "pap", "status", "summary", "assignee", "customFields", "taskRule",
                "observableRule")
} | {"caseTemplate": _text(1, 128), "tasks": _objects, "pages": _objects,
     "sharingParameters": _objects}  # fmt: skip
COMMENT_FIELDS: dict[str, Check] = {"message": LONG_TEXT, "external": _boolean}
OBSERVABLE_FIELDS: dict[str, Check] = {
    "dataType": _text(1, 64),
    "data": _observable_data,
    "message": LONG_TEXT,
    "startDate": _long,
    "tlp": TLP,
    "pap": PAP,
    "tags": _tags,
    "ioc": _boolean,
    "sighted": _boolean,
    "sightedAt": _long,
    "ignoreSimilarity": _boolean,
}
# Output fields a client may echo back in a PATCH: named read-only rather than unknown.
READ_ONLY_FIELDS = frozenset(
    {"_id", "_type", "_createdBy", "_createdAt", "_updatedBy", "_updatedAt", "stage", "caseId",
     "number", "observableCount", "newDate", "inProgressDate", "closedDate", "importedDate",
     "severityLabel", "tlpLabel", "papLabel", "extraData", "timeToDetect"}
)  # fmt: skip


def validate(
    entity: str,
    body: Any,
    fields: Mapping[str, Check],
    required: Sequence[str] = (),
    *,
    reject_unknown: bool = True,
) -> JsonObject:
    """The body as a dict of known fields, or a 400 AttributeCheckingError listing every
    problem (ScalliGraph reports all attribute errors at once, as `[e1][e2]`)."""
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object")
    errors = [missing_field(f"{entity}.{name}") for name in required if name not in body]
    for name, value in body.items():
        path = f"{entity}.{name}"
        check = fields.get(name)
        if check is None:
            if name in READ_ONLY_FIELDS:
                message = f"Attribute {path} is read-only"
                errors.append(attribute_error("UpdateReadOnlyAttributeError", path, message))
            elif reject_unknown:
                message = f"Unknown attribute {path}: {echo_value(value)}"
                errors.append(attribute_error("UnknownAttributeError", path, message))
            continue
        expected = check(value)
        if expected is not None:
            message = f"Invalid format for {path}: {echo_value(value)}, expected {expected}"
            errors.append(attribute_error("InvalidFormatAttributeError", path, message))
    if errors:
        raise attribute_checking_error(errors)
    return {name: value for name, value in body.items() if name in fields}


def attribute_checking_error(errors: list[JsonObject]) -> TheHiveError:
    message = "".join(f"[{error['message']}]" for error in errors)
    return TheHiveError(400, "AttributeCheckingError", message, {"errors": errors})


def missing_field(path: str) -> JsonObject:
    return attribute_error("MissingAttributeError", path, f"Attribute {path} is missing")


def attribute_error(kind: str, name: str, message: str) -> JsonObject:
    return {"type": kind, "name": name, "message": message}


def echo_value(value: Any) -> str:
    """A refused value as quoted back: short, so a huge input is not sent back whole."""
    text = repr(value)
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 3] + "..."

"""The TheHive 5 fake against thehive4py 2.x's own type definitions (thehive4py/types/*.py).

thehive4py's client (TheHiveApi, synchronous, on requests) drives the fake over TLS on
loopback, with bodies typed by its Input TypedDicts; every object the fake answers is checked
against the matching Output TypedDict (keys declared, required keys present, value types),
and the fake's input field tables (thehive_checks.py) against the Input TypedDicts.

Known differences are encoded below, each with its reason; each mismatch found in the fake
is a strict xfail of its own (test_output_has_no_undeclared_key).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict, Union

import pytest
from thehive4py import TheHiveApi
from thehive4py.errors import TheHiveError
from thehive4py.types.alert import (
    InputAlert,
    InputPromoteAlert,
    InputUpdateAlert,
    OutputAlert,
)
from thehive4py.types.case import InputUpdateCase, OutputCase
from thehive4py.types.comment import InputComment, OutputComment
from thehive4py.types.observable import InputObservable, OutputObservable

from sentinel_bridge_emulator.server import serving
from sentinel_bridge_emulator.thehive import TheHiveEmulator
from sentinel_bridge_emulator.thehive_checks import (
    ALERT_CREATE_FIELDS,
    ALERT_REQUIRED,
    ALERT_UPDATE_FIELDS,
    CASE_FROM_ALERT_FIELDS,
    CASE_UPDATE_FIELDS,
    COMMENT_FIELDS,
    OBSERVABLE_FIELDS,
    Check,
)
from sentinel_bridge_emulator.thehive_http import TheHiveService
from sentinel_bridge_emulator.tls import TlsMaterial, create_tls_material

KEY = "key-bridge-a"
LOGIN = "bridge@soc-a"
ORG = "soc-a"


# -- known differences between the fake and thehive4py 2.0.3 ------------------------------------
# The fake follows TheHive 5.7.3's OpenAPI (the first source its docstring names), whose
# OutputComment requires `external` (boolean) and whose InputComment accepts it; thehive4py
# 2.0.3's comment types predate the field. These subclasses are thehive4py's types plus exactly
# that field: `external` is still checked (required on output, a bool), nothing else is relaxed.
class OutputCommentOfTheHive5(OutputComment):
    external: bool


class InputCommentOfTheHive5(InputComment, total=False):
    external: bool


# Fields thehive4py declares that the fake refuses on purpose: observable attachments travel as
# multipart uploads, which the fake does not serve (thehive.py, _validate_observables).
NOT_ACCEPTED_BY_THE_FAKE: Mapping[str, frozenset[str]] = {
    "OBSERVABLE_FIELDS": frozenset({"attachment", "isZip", "zipPassword"}),
}


# thehive4py 2.0.3 declares no audit type: TheHive 5.7.3's OpenAPI OutputAudit, transcribed
# (components/schemas/OutputAudit), for the fake's audit log. Required and optional keys are two
# classes, not NotRequired[...]: under `from __future__ import annotations` Python 3.11's
# TypedDict cannot see a NotRequired written in the class itself.
class _OutputAuditRequired(TypedDict):
    _id: str
    _type: str
    _createdBy: str
    _createdAt: int
    action: str
    requestId: str
    rootId: str
    details: dict[str, Any]
    mainAction: bool


class OutputAudit(_OutputAuditRequired, total=False):
    _updatedBy: str
    _updatedAt: int
    objectId: str
    objectType: str
    object: dict[str, Any]
    context: dict[str, Any]


OUTPUT_TYPES: Mapping[str, type] = {
    "alert": OutputAlert,
    "case": OutputCase,
    "comment": OutputCommentOfTheHive5,
    "observable": OutputObservable,
}


# -- checking a value against a TypedDict ------------------------------------------------------


def shape_problems(record: Mapping[str, Any], schema: type, where: str) -> list[str]:
    """What in `record` disagrees with TypedDict `schema`: undeclared keys, missing required
    keys, values not of the declared type."""
    hints = typing.get_type_hints(schema)
    name = schema.__name__
    problems = [
        f"{where}.{key} = {value!r}: not declared by {name}"
        for key, value in record.items()
        if key not in hints
    ]
    required: frozenset[str] = getattr(schema, "__required_keys__", frozenset())
    problems += [
        f"{where}.{key}: required by {name}, absent" for key in sorted(required - set(record))
    ]
    for key, value in record.items():
        if key in hints:
            problems += type_problems(value, hints[key], f"{where}.{key}")
    return problems


def type_problems(value: Any, annotation: Any, where: str) -> list[str]:
    """What in `value` disagrees with `annotation` (plain types, lists, dicts, Literal, Union,
    nested TypedDicts)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return []
    if typing.is_typeddict(annotation):
        if not isinstance(value, dict):
            return [f"{where} = {value!r}: expected an object ({annotation.__name__})"]
        return shape_problems(value, annotation, where)
    if origin is Literal or origin is Union:
        return alternative_problems(value, annotation, where)
    if origin in (list, dict):
        return container_problems(value, annotation, where)
    if isinstance(annotation, type):
        return [] if is_plain(value, annotation) else [mismatch(where, value, annotation)]
    raise AssertionError(f"{where}: annotation {annotation!r} is not handled by this test")


def alternative_problems(value: Any, annotation: Any, where: str) -> list[str]:
    options = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return [] if value in options else [f"{where} = {value!r}: expected one of {options}"]
    if any(not type_problems(value, option, where) for option in options):
        return []
    return [mismatch(where, value, annotation)]


def container_problems(value: Any, annotation: Any, where: str) -> list[str]:
    origin = typing.get_origin(annotation)
    if not isinstance(value, origin):
        return [mismatch(where, value, annotation)]
    args = typing.get_args(annotation)
    if origin is list and args:
        return [
            p for i, item in enumerate(value) for p in type_problems(item, args[0], f"{where}[{i}]")
        ]
    if origin is dict and args:
        return [
            p for k, item in value.items() for p in type_problems(item, args[1], f"{where}[{k!r}]")
        ]
    return []


def is_plain(value: Any, expected: type) -> bool:
    """isinstance, except that a bool is no int (JSON true is not a number)."""
    if expected in (int, float) and isinstance(value, bool):
        return False
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def mismatch(where: str, value: Any, annotation: Any) -> str:
    return f"{where} = {value!r} ({type(value).__name__}): expected {annotation!r}"


# -- the fake served from a background thread, for the synchronous client ------------------------


@contextlib.contextmanager
def serve_in_thread(hive: TheHiveEmulator, tls: TlsMaterial) -> Iterator[int]:
    """Serve the fake on a loopback port from a thread with its own event loop: thehive4py
    blocks on requests, so the server cannot share the test's loop."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with serving([TheHiveService(hive).app()], "127.0.0.1", tls) as ports:
            state["port"] = ports[0]
            ready.set()
            await state["stop"].wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:  # reported to the test's thread
            state["error"] = error
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="thehive-fake", daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "the TheHive fake did not start in time"
        if "port" not in state:
            raise RuntimeError("the TheHive fake failed to start") from state.get("error")
        yield state["port"]
    finally:
        if "stop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)


@pytest.fixture
def hive() -> TheHiveEmulator:
    fake = TheHiveEmulator()
    fake.add_organisation(ORG)
    fake.add_api_key(KEY, LOGIN, [ORG])
    return fake


@pytest.fixture
def api(hive: TheHiveEmulator, tmp_path: Path) -> Iterator[TheHiveApi]:
    tls = create_tls_material(tmp_path / "tls")
    with serve_in_thread(hive, tls) as port:
        client = TheHiveApi(
            url=f"https://127.0.0.1:{port}",
            apikey=KEY,
            organisation=ORG,
            verify=str(tls.ca_path),
            max_retries=0,  # a failure is the finding: no retries behind it
        )
        try:
            yield client
        finally:
            client.session.close()


# -- an alert's life, driven by thehive4py --------------------------------------------------------


def input_alert(source_ref: str) -> InputAlert:
    observables: list[InputObservable] = [
        {
            "dataType": "ip",
            "data": "203.0.113.7",
            "message": "sign-in source",
            "startDate": 1_700_000_000_000,
            "tlp": 1,
            "pap": 1,
            "tags": ["src"],
            "ioc": True,
            "sighted": True,
            "sightedAt": 1_700_000_000_000,
            "ignoreSimilarity": False,
        },
        {"dataType": "domain", "data": ["a.example", "b.example"]},
    ]
    return {
        "type": "sentinel",
        "source": "sentinel-bridge",
        "sourceRef": source_ref,
        "externalLink": f"https://portal.example/incidents/{source_ref}",
        "title": "Impossible travel",
        "description": "Sign-ins from two countries",
        "severity": 3,
        "date": 1_700_000_000_000,
        "tags": ["sentinel", "travel"],
        "flag": False,
        "tlp": 2,
        "pap": 2,
        "customFields": [{"name": "tenant", "value": "contoso", "order": 0}],
        "summary": "Two sign-ins 9000 km apart",
        "status": "New",
        "assignee": "analyst@soc-a",
        "observables": observables,
    }


def alert_life(api: TheHiveApi) -> dict[str, list[Any]]:
    """Create, triage, comment, promote, update, merge, close: every answer, by kind."""
    seen: dict[str, list[Any]] = {kind: [] for kind in OUTPUT_TYPES}
    alert = api.alert.create(input_alert("inc-1"))
    triage: InputUpdateAlert = {
        "status": "InProgress",
        "follow": True,
        "addTags": ["triaged"],
        "removeTags": ["travel"],
        "lastSyncDate": 1_700_000_100_000,
        "assignee": "analyst@soc-a",
    }
    api.alert.update(alert["_id"], triage)
    seen["alert"] += [alert, api.alert.get(alert["_id"])]
    seen["comment"].append(api.comment.create_in_alert(alert["_id"], {"message": "Looking"}))
    seen["comment"] += api.alert.find_comments(alert["_id"])
    seen["observable"] += api.alert.find_observables(alert["_id"])

    promote: InputPromoteAlert = {"title": "Account takeover", "severity": 4, "flag": True}
    case = api.alert.promote_to_case(alert["_id"], promote)
    update: InputUpdateCase = {
        "assignee": "lead@soc-a",
        "addTags": ["escalated"],
        "customFields": {"confidence": 80},
        "tlp": 3,
        "taskRule": "manual",
        "observableRule": "manual",
    }
    api.case.update(case["_id"], update)
    seen["comment"].append(api.comment.create_in_case(case["_id"], {"message": "Resetting"}))
    second = api.alert.create(input_alert("inc-2"))
    merged = api.alert.merge_into_case(second["_id"], case["_id"])
    api.case.close(
        case["_id"], status="TruePositive", summary="Confirmed", impact_status="WithImpact"
    )
    seen["case"] += [case, merged, api.case.get(case["_id"]), *api.case.find()]
    seen["comment"] += api.case.find_comments(case["_id"])
    seen["observable"] += api.case.find_observables(case["_id"])
    seen["alert"] += [second, api.alert.get(alert["_id"]), *api.alert.find()]
    return seen


def test_thehive4py_drives_an_alerts_life_through_the_fake(api: TheHiveApi) -> None:
    """thehive4py's own calls (create, update, comment, promote, merge, close, find) all succeed."""
    seen = alert_life(api)
    first, _, second, imported, *_ = seen["alert"]
    case, merged, closed, *_ = seen["case"]
    assert (first["status"], first["stage"], first["observableCount"]) == ("New", "New", 3)
    assert (imported["stage"], imported["caseId"]) == ("Imported", case["_id"])
    assert merged["_id"] == case["_id"] and "inc-2" in merged["description"]
    assert (closed["status"], closed["stage"], closed["impactStatus"]) == (
        "TruePositive",
        "Closed",
        "WithImpact",
    )
    assert (closed["assignee"], closed["tlp"], closed["summary"]) == ("lead@soc-a", 3, "Confirmed")
    assert {"escalated", "triaged"} <= set(closed["tags"])
    assert [c["message"] for c in seen["comment"]] == [
        "Looking",
        "Looking",
        "Resetting",
        "Resetting",
    ]
    assert api.alert.count() == 2 and second["status"] == "New"
    with pytest.raises(TheHiveError, match="already exist"):
        api.alert.create(input_alert("inc-1"))


# -- every output against thehive4py's Output TypedDict --------------------------------------------

# Keys the fake once answered that neither thehive4py 2.0.3's Output type nor TheHive 5.7.3's
# OpenAPI output schema declares (input-only fields echoed back, TheHive 4's alert `flag`):
# test_output_has_no_undeclared_key pins each one, test_the_known_differences_are_still_differences
# that thehive4py still does not declare it.
MISMATCHES: tuple[tuple[str, str, str], ...] = (
    # (kind, key, where the fake put it)
    ("alert", "flag", "set on every alert at creation; TheHive 4's v1 OutputAlert had it"),
    ("alert", "lastSyncDate", "an InputUpdateAlert field echoed back after a PATCH"),
    ("case", "taskRule", "an InputUpdateCase field echoed back after a PATCH"),
    ("case", "observableRule", "an InputUpdateCase field echoed back after a PATCH"),
)


@pytest.mark.parametrize("kind", sorted(OUTPUT_TYPES))
def test_every_output_matches_its_thehive4py_type(api: TheHiveApi, kind: str) -> None:
    """Each alert, case, comment and observable answered has only declared keys, every
    required key, and values of the declared types."""
    schema = OUTPUT_TYPES[kind]
    answers = alert_life(api)[kind]
    assert answers, f"the scenario produced no {kind}"
    problems = [
        problem
        for index, answer in enumerate(answers)
        for problem in shape_problems(
            answer,
            schema,
            f"{kind}[{index}]",
        )
    ]
    assert not problems, f"{kind} answers disagree with {schema.__name__}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("kind", "key"),
    [pytest.param(kind, key, id=f"{kind}-{key}") for kind, key, _ in MISMATCHES],
)
def test_output_has_no_undeclared_key(api: TheHiveApi, kind: str, key: str) -> None:
    """No alert or case as answered carries a key its thehive4py Output type does not declare."""
    holders = [answer for answer in alert_life(api)[kind] if key in answer]
    assert not holders, f"{kind}.{key} = {holders[0][key]!r}: not declared, answered anyway"


def test_the_known_differences_are_still_differences() -> None:
    """Each difference encoded above still holds in thehive4py, so none outlives its cause."""
    assert "external" not in OutputComment.__annotations__, "drop OutputCommentOfTheHive5"
    assert "external" not in InputComment.__annotations__, "drop InputCommentOfTheHive5"
    for kind, key, _ in MISMATCHES:
        assert key not in typing.get_type_hints(OUTPUT_TYPES[kind]), f"drop {kind}.{key}"
    refused = NOT_ACCEPTED_BY_THE_FAKE["OBSERVABLE_FIELDS"]
    assert refused <= set(typing.get_type_hints(InputObservable))


def audit_entries(hive: TheHiveEmulator, api: TheHiveApi) -> list[Any] | None:
    """The fake's audit log, from its test hook and from the Query API's listAudit; None when
    it has neither."""
    entries: list[Any] = []
    found = False
    reader = getattr(hive, "audits", None)
    if callable(reader):
        found = True
        entries += reader()
    try:
        listed = api.session.make_request(
            "POST", "/api/v1/query", json={"query": [{"_name": "listAudit"}]}
        )
    except TheHiveError:
        pass  # the Query API knows no listAudit
    else:
        found = True
        entries += listed
    return entries if found else None


def test_audit_entries_match_output_audit(api: TheHiveApi, hive: TheHiveEmulator) -> None:
    """Each audit entry (hook or listAudit) has the keys and types of TheHive's OutputAudit."""
    alert_life(api)
    entries = audit_entries(hive, api)
    if entries is None:
        pytest.skip("the fake has no audit log yet: no TheHiveEmulator.audits(), no listAudit")
    assert entries, "the fake keeps an audit log but recorded nothing of an alert's life"
    problems = [
        p for i, e in enumerate(entries) for p in shape_problems(e, OutputAudit, f"audit[{i}]")
    ]
    assert not problems, "audit entries disagree with OutputAudit:\n" + "\n".join(problems)


# -- the fake's accepted fields against thehive4py's Input TypedDicts ----------------------------

INPUT_TABLES: Mapping[str, tuple[Mapping[str, Check], type]] = {
    "ALERT_CREATE_FIELDS": (ALERT_CREATE_FIELDS, InputAlert),
    "ALERT_UPDATE_FIELDS": (ALERT_UPDATE_FIELDS, InputUpdateAlert),
    "CASE_FROM_ALERT_FIELDS": (CASE_FROM_ALERT_FIELDS, InputPromoteAlert),
    "CASE_UPDATE_FIELDS": (CASE_UPDATE_FIELDS, InputUpdateCase),
    "COMMENT_FIELDS": (COMMENT_FIELDS, InputCommentOfTheHive5),
    "OBSERVABLE_FIELDS": (OBSERVABLE_FIELDS, InputObservable),
}


@pytest.mark.parametrize("table", sorted(INPUT_TABLES))
def test_accepted_fields_are_those_thehive4py_declares(table: str) -> None:
    """Every field the fake accepts is declared by the thehive4py Input type, and every
    declared field is accepted (bar the encoded exceptions)."""
    fields, schema = INPUT_TABLES[table]
    declared = set(typing.get_type_hints(schema))
    refused = NOT_ACCEPTED_BY_THE_FAKE.get(table, frozenset())
    undeclared = sorted(set(fields) - declared)
    unaccepted = sorted(declared - set(fields) - refused)
    assert (undeclared, unaccepted) == ([], []), (
        f"{table} vs {schema.__name__}: accepted but not declared {undeclared}; "
        f"declared but refused by the fake {unaccepted}"
    )


def test_required_alert_fields_are_thehive4pys() -> None:
    """The fake requires on alert creation exactly the keys InputAlert requires."""
    assert set(ALERT_REQUIRED) == set(InputAlert.__required_keys__)


def test_the_checker_reports_each_kind_of_disagreement() -> None:
    """shape_problems flags undeclared and absent keys, wrong types, a bool for an int, and a
    value outside a Literal."""
    comment = {"_id": "~1", "_type": "Comment", "createdBy": "u", "createdAt": True}
    assert shape_problems({**comment, "extra": 1}, OutputComment, "c") == [
        "c.extra = 1: not declared by OutputComment",
        "c.extraData: required by OutputComment, absent",
        "c.isEdited: required by OutputComment, absent",
        "c.message: required by OutputComment, absent",
        "c.createdAt = True (bool): expected <class 'int'>",
    ]
    assert type_problems("Closed", typing.get_type_hints(OutputCase)["status"], "s")
    assert type_problems(["a", 1], list[str], "t") == ["t[1] = 1 (int): expected <class 'str'>"]
    assert OutputAudit.__required_keys__ >= {"_id", "action", "mainAction"}
    assert "_updatedAt" in OutputAudit.__optional_keys__

"""The central queue (contract v1, docs/queue-contract-v1.openapi.yaml) as state and hooks.

PUT /v1/alerts/{id} answers 201 / 200 / 409 by revision; POST /v1/alerts:batch (when
`queue_batch_max_alerts` offers it) answers the same per alert, each logged like a PUT;
/v1/changes serves analyst actions oldest first behind an opaque cursor. Every alert PUT is
logged, so tests can count creates per alert id (duplicates) and see updates; a client that
calls through `/_client/{name}/` under the prefix (see queue_http.py) is named in the log, so
tests can tell several bridge replicas apart.
"""

from __future__ import annotations

import base64
import binascii
import copy
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .faults import Faults, error_body
from .json_types import JsonObject
from .options import EmulatorOptions
from .timefmt import format_ts, parse_ts, utcnow

STATUS_FIELDS = ("status", "classification", "classification_reason", "classification_comment")
MAX_CHANGES_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class PutRecord:
    """One alert PUT as received: which alert, which revision, what was answered, the
    client's name when it called through `/_client/{name}/` (None otherwise), and whether it
    came on its own ("put") or in a batch ("batch")."""

    alert_id: str
    revision: str | None
    status: int
    at: float
    client: str | None = None
    via: str = "put"


class QueueEmulator:
    """Alerts, comments and the change feed of the central queue. Thread-safe."""

    def __init__(self, options: EmulatorOptions, lock: threading.RLock) -> None:
        self.options = options
        self.lock = lock
        self.faults = Faults(seed=options.seed)
        self._alerts: dict[str, JsonObject] = {}
        self._revisions: dict[str, datetime] = {}
        self._comments: dict[str, dict[str, JsonObject]] = {}
        self._changes: list[JsonObject] = []
        self._log: list[PutRecord] = []

    # -- what tests read ----------------------------------------------------------------------

    @property
    def alerts(self) -> dict[str, JsonObject]:
        """alert id -> latest body received (do not mutate the bodies)."""
        with self.lock:
            return dict(self._alerts)

    @property
    def put_log(self) -> list[PutRecord]:
        with self.lock:
            return list(self._log)

    @property
    def creates(self) -> Counter[str]:
        """alert id -> number of 201 answers; any value above 1 is a duplicate."""
        with self.lock:
            return Counter(record.alert_id for record in self._log if record.status == 201)

    def comments(self, alert_id: str) -> dict[str, JsonObject]:
        with self.lock:
            return dict(self._comments.get(alert_id, {}))

    @property
    def changes(self) -> list[JsonObject]:
        with self.lock:
            return list(self._changes)

    # -- analyst actions (test hooks) -----------------------------------------------------------

    def add_change(
        self,
        alert_id: str,
        kind: str,
        *,
        origin: str = "analyst",
        actor: str | None = None,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> JsonObject:
        """Append a change to the feed and apply it to the stored alert."""
        change: JsonObject = {
            "change_id": str(uuid.uuid4()),
            "alert_id": alert_id,
            "kind": kind,
            "occurred_at": format_ts(occurred_at or utcnow()),
            "actor": actor or ("sentinel-bridge" if origin == "bridge" else "analyst@soc.example"),
            "origin": origin,
            **fields,
        }
        with self.lock:
            self._changes.append(change)
            self._apply(change)
        return dict(change)

    def add_raw_change(self, item: Any) -> None:
        """Append any JSON value to the feed as it is, unapplied: a queue sending junk."""
        with self.lock:
            self._changes.append(copy.deepcopy(item))

    def add_status_change(
        self,
        alert_id: str,
        status: str,
        *,
        classification: str | None = None,
        classification_reason: str | None = None,
        classification_comment: str | None = None,
        origin: str = "analyst",
    ) -> JsonObject:
        return self.add_change(
            alert_id, "status", origin=origin, status=status, classification=classification,
            classification_reason=classification_reason,
            classification_comment=classification_comment,
        )  # fmt: skip

    def add_comment_change(
        self,
        alert_id: str,
        body: str,
        *,
        comment_id: str | None = None,
        author: str = "analyst@soc.example",
        origin: str = "analyst",
    ) -> JsonObject:
        return self.add_change(
            alert_id, "comment", origin=origin, comment_id=comment_id or str(uuid.uuid4()),
            body=body, author=author, created_at=format_ts(utcnow()),
        )  # fmt: skip

    def add_owner_change(
        self, alert_id: str, owner: Mapping[str, Any] | None, *, origin: str = "analyst"
    ) -> JsonObject:
        return self.add_change(
            alert_id, "owner", origin=origin, owner=dict(owner) if owner else None
        )

    def _apply(self, change: JsonObject) -> None:
        alert = self._alerts.get(change["alert_id"])
        if change["kind"] == "comment":
            comments = self._comments.setdefault(change["alert_id"], {})
            comments.setdefault(
                change["comment_id"], {"body": change["body"], "author": change["author"]}
            )
        elif alert is not None and change["kind"] == "status":
            self._alerts[change["alert_id"]] = {
                **alert,
                **{k: change.get(k) for k in STATUS_FIELDS},
            }
        elif alert is not None and change["kind"] == "owner":
            self._alerts[change["alert_id"]] = {**alert, "owner": change.get("owner")}

    # -- the contract's operations ----------------------------------------------------------------

    def capabilities(self) -> JsonObject:
        """GET /v1/capabilities: the batch endpoint only when the options offer it."""
        limit = self.options.queue_batch_max_alerts
        if limit <= 0:
            return {"contract": "v1"}
        return {"contract": "v1", "alerts_batch": {"max_alerts": limit}}

    def put_alerts(self, body: Any, client: str | None = None) -> tuple[int, JsonObject]:
        """POST /v1/alerts:batch: each alert exactly as its own PUT (revision rules, put_log
        with via "batch"). 404 when not offered, 413 over max_alerts, 400 for an envelope that
        is not `{"alerts": [{"alert_id", "body"}, ...]}` with unique ids (nothing logged)."""
        limit = self.options.queue_batch_max_alerts
        if limit <= 0:
            return 404, error_body(404, "This queue offers no batch endpoint.", "not_found")
        alerts = body.get("alerts") if isinstance(body, dict) else None
        if not isinstance(alerts, list):
            return 400, error_body(400, "The body needs an 'alerts' array.", "bad_request")
        if len(alerts) > limit:
            return 413, error_body(413, f"At most {limit} alerts per batch.", "too_large")
        ids = batch_alert_ids(body)
        if ids is None or len(set(ids)) != len(ids):
            message = "Each alert needs a string 'alert_id', unique within the batch."
            return 400, error_body(400, message, "bad_request")
        results = [
            _batch_result(alert_id, *self.put_alert(alert_id, alert.get("body"), client, "batch"))
            for alert_id, alert in zip(ids, alerts, strict=True)
        ]
        return 200, {"results": results}

    def put_alert(
        self, alert_id: str, body: Any, client: str | None = None, via: str = "put"
    ) -> tuple[int, JsonObject]:
        """201 created, 200 updated (same or newer revision), 409 older than held, 400 bad."""
        revision, problem = _revision(body)
        if revision is None:
            self.log_put(alert_id, None, 400, client, via)
            return 400, error_body(400, problem, "bad_request")
        with self.lock:
            held = self._revisions.get(alert_id)
            if held is not None and held > revision:
                status, answer = (
                    409,
                    error_body(
                        409, f"The queue holds a newer revision ({format_ts(held)}).", "conflict"
                    ),
                )
            else:
                status = 201 if held is None else 200
                self._store(alert_id, body, revision, echo=held is not None)
                answer = {"alert_id": alert_id, "revision": body["revision"]}
            record = PutRecord(alert_id, str(body["revision"]), status, time.time(), client, via)
            self._log.append(record)
        return status, answer

    def log_put(
        self,
        alert_id: str,
        revision: str | None,
        status: int,
        client: str | None = None,
        via: str = "put",
    ) -> None:
        with self.lock:
            self._log.append(PutRecord(alert_id, revision, status, time.time(), client, via))

    def _store(self, alert_id: str, body: JsonObject, revision: datetime, echo: bool) -> None:
        previous = self._alerts.get(alert_id)
        self._alerts[alert_id] = body
        self._revisions[alert_id] = revision
        if echo and previous is not None and self.options.queue_echo_bridge_changes:
            self._echo(alert_id, previous, body)

    def _echo(self, alert_id: str, previous: JsonObject, body: JsonObject) -> None:
        """Writes made with the bridge's token show up in the feed marked origin 'bridge'."""
        if any(previous.get(key) != body.get(key) for key in STATUS_FIELDS):
            self._changes.append(
                _bridge_change(alert_id, "status", {key: body.get(key) for key in STATUS_FIELDS})
            )
        if previous.get("owner") != body.get("owner"):
            self._changes.append(_bridge_change(alert_id, "owner", {"owner": body.get("owner")}))

    def put_comment(self, alert_id: str, comment_id: str, body: Any) -> tuple[int, JsonObject]:
        """Idempotent on comment id: 201 the first time, 200 after; 404 for unknown alerts."""
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return 400, error_body(400, "A comment needs a string 'body'.", "bad_request")
        with self.lock:
            if alert_id not in self._alerts:
                return 404, error_body(404, f"No alert '{alert_id}'.", "not_found")
            comments = self._comments.setdefault(alert_id, {})
            created = comment_id not in comments
            comments[comment_id] = body
            if created and self.options.queue_echo_bridge_changes:
                self._changes.append(
                    _bridge_change(
                        alert_id,
                        "comment",
                        {
                            "comment_id": comment_id,
                            "body": body["body"],
                            "author": body.get("author"),
                            "created_at": body.get("created_at"),
                        },
                    )
                )
        return (201 if created else 200), {"alert_id": alert_id, "comment_id": comment_id}

    def changes_page(self, after: str | None, limit: int) -> JsonObject:
        """Changes after the cursor, oldest first, and the cursor to continue from."""
        start = _decode_cursor(after) if after else 0
        with self.lock:
            page = self._changes[start : start + limit]
        return {"changes": page, "next_cursor": _encode_cursor(start + len(page))}


def batch_alert_ids(body: Any) -> list[str] | None:
    """The alert ids of a batch body in order, or None when one is missing or not a string."""
    alerts = body.get("alerts") if isinstance(body, dict) else None
    if not isinstance(alerts, list):
        return None
    ids = [alert.get("alert_id") if isinstance(alert, dict) else None for alert in alerts]
    named = [alert_id for alert_id in ids if isinstance(alert_id, str) and alert_id]
    return named if len(named) == len(ids) else None


def _batch_result(alert_id: str, status: int, answer: JsonObject) -> JsonObject:
    """One alert's entry of a batch answer: its status, and the error a PUT would carry."""
    result: JsonObject = {"alert_id": alert_id, "status": status}
    if "error" in answer:
        result["error"] = {"message": answer["error"]["message"]}
    return result


def _revision(body: Any) -> tuple[datetime | None, str]:
    if not isinstance(body, dict):
        return None, "The body must be a JSON object."
    if not isinstance(body.get("title"), str):
        return None, "The alert needs a string 'title'."
    try:
        return parse_ts(str(body["revision"])), ""
    except (KeyError, ValueError):
        return None, "The alert needs an ISO-8601 'revision'."


def _bridge_change(alert_id: str, kind: str, fields: JsonObject) -> JsonObject:
    return {
        "change_id": str(uuid.uuid4()),
        "alert_id": alert_id,
        "kind": kind,
        "occurred_at": format_ts(utcnow()),
        "actor": "sentinel-bridge",
        "origin": "bridge",
        **fields,
    }


def _encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{position}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    """Raises ValueError for a cursor this queue never handed out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    prefix, _, number = text.partition(":")
    if prefix != "v1" or not number.isdigit():
        raise ValueError("invalid cursor")
    return int(number)

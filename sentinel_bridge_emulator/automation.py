"""An emulated Sentinel automation rule and the Logic App playbook it runs: when an incident
of its workspace is created or updated, POST a small JSON body naming it to a URL, as the
playbook in deploy/sentinel-push-playbook.json does.

    automation = emulator.add_automation(ws, "https://127.0.0.1:8443/v1/push/sentinel",
                                         webhook_secret="whsec_...")

The rule hears of each write where the emulator makes it (WorkspaceIncidents.published), so
test hooks, the control API and the bridge's own ARM PUTs all fire it, as in Sentinel. It only
queues a snapshot there: one worker thread per rule sends, after `delay_seconds`, and retries
like a Logic App's default policy (up to 4 retries on 408, 429, 5xx and connection errors,
exponential delays, here scaled down to seconds so tests and benchmarks stay short).

Signing follows Standard Webhooks, implemented here from the specification
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
rather than taken from the bridge, so the emulator stays an independent oracle: webhook-id is
one id per message (the same on its retries), webhook-timestamp the attempt's Unix second, and
webhook-signature `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the
base64 decoding of the secret after `whsec_`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import itertools
import json
import math
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

from .incidents_store import Record, WorkspaceIncidents

EVENTS = ("created", "updated")
MANUAL = "manual"  # the event of an attempt made by send_now
SECRET_PREFIX = "whsec_"
# A Logic App retries 4 times at exponentially growing intervals (7.5 s scale by default);
# the same shape, in seconds, keeps a test or a benchmark run short.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
RETRY_AFTER_CAP_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 10.0
_RETRYABLE = frozenset({408, 429})
_counter = itertools.count()  # breaks ties between messages due at the same instant


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST the playbook tried: `status` is the answer's, or None and `error` says why
    no answer came (the exception's class and message, never a header)."""

    incident_name: str
    event: str  # "created", "updated" or "manual"
    attempt: int  # 1 for the first try of a message
    status: int | None
    error: str | None
    at: float  # time.time() when the attempt ended


@dataclass(frozen=True, slots=True)
class _Message:
    incident_name: str
    event: str
    body: bytes
    webhook_id: str


@dataclass(order=True, slots=True)
class _Due:
    at: float  # time.monotonic()
    order: int
    message: _Message = field(compare=False)
    attempt: int = field(compare=False, default=1)


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; ValueError says what is wrong, never the secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is base64 after its prefix") from None
    if not key:
        raise ValueError("a webhook secret holds at least one byte")
    return key


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: `v1,` and the base64 HMAC-SHA256 of the signed content."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def push_body(record: Record) -> bytes:
    """What the playbook POSTs for `record`: the shape the product's docs/push.md shows."""
    ws = record.workspace
    arm_id = (
        f"/subscriptions/{ws.subscription_id}/resourceGroups/{ws.resource_group}"
        f"/providers/Microsoft.OperationalInsights/workspaces/{ws.workspace_name}"
        f"/providers/Microsoft.SecurityInsights/Incidents/{record.name}"
    )
    body = {
        "incidentArmId": arm_id,
        "incidentName": record.name,
        "etag": record.etag,
        "incidentNumber": record.props.get("incidentNumber"),
        "workspaceInfo": {
            "SubscriptionId": ws.subscription_id,
            "ResourceGroupName": ws.resource_group,
            "WorkspaceName": ws.workspace_name,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def retry_delay(retry: int, retry_after: str | None) -> float:
    """Seconds before retry number `retry` (1-based): the answer's Retry-After (seconds or an
    HTTP date) capped at RETRY_AFTER_CAP_SECONDS, else the policy's exponential delay."""
    default = RETRY_DELAYS[min(max(retry, 1), len(RETRY_DELAYS)) - 1]
    asked = _retry_after_seconds(retry_after) if retry_after is not None else None
    if asked is None:
        return default
    return min(max(asked, 0.0), RETRY_AFTER_CAP_SECONDS)


def _retry_after_seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            return parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return seconds if math.isfinite(seconds) else None


def is_retryable(status: int) -> bool:
    return status in _RETRYABLE or 500 <= status <= 599


class Automation:
    """One automation rule of one workspace, with its playbook's worker thread.

    Made by Emulator.add_automation. `stop()` (or leaving a `with` block, or the emulator's
    serve() ending) ends the worker and drops what was not sent yet; a stopped rule ignores
    later writes. The repr names no secret.
    """

    def __init__(
        self,
        incidents: WorkspaceIncidents,
        lock: threading.RLock,
        url: str,
        *,
        webhook_secret: str | None = None,
        bearer_token: str | None = None,
        ca_path: str | None = None,
        delay_seconds: float = 0.0,
        on: tuple[str, ...] = EVENTS,
    ) -> None:
        _check(url, bearer_token, delay_seconds, on)
        self.workspace = incidents.workspace
        self.url = url
        self.on = tuple(on)
        self.delay_seconds = float(delay_seconds)
        self._key = decode_secret(webhook_secret) if webhook_secret is not None else None
        self._bearer = bearer_token
        # A context, not the path: httpx deprecates verify=<path>.
        self._verify = ssl.create_default_context(cafile=ca_path) if ca_path else True
        self._incidents, self._lock = incidents, lock
        self._wake = threading.Condition()
        self._due: list[_Due] = []
        self._log: list[Attempt] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="emulator-automation", daemon=True)
        self._thread.start()
        with lock:
            incidents.listeners.append(self._observe)

    def __repr__(self) -> str:
        auth = "signed" if self._key else "bearer" if self._bearer else "unauthenticated"
        return f"Automation({self.workspace.key!r}, {self.url!r}, {auth}, on={self.on})"

    def __enter__(self) -> Automation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def log(self) -> list[Attempt]:
        """Every attempt so far, oldest first (a copy)."""
        with self._wake:
            return list(self._log)

    @property
    def pending(self) -> int:
        """Messages waiting for their delay or for a retry."""
        with self._wake:
            return len(self._due)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker (waiting up to `timeout` for a POST in flight); idempotent."""
        with self._lock:
            if self._observe in self._incidents.listeners:
                self._incidents.listeners.remove(self._observe)
        with self._wake:
            self._stopped = True
            self._due.clear()
            self._wake.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def send_now(
        self,
        incident_name: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str | None] | None = None,
        timestamp: int | None = None,
    ) -> int:
        """POST once, now, from the calling thread, and return the status (no retry; a
        connection error raises httpx's). The body is the incident's (KeyError when it does
        not exist) unless `body` is given; it is signed with `timestamp` (default now);
        `headers` then replace headers by name, a None value removes one."""
        if body is None:
            with self._lock:
                record = self._incidents.get(incident_name)
                if record is None:
                    raise KeyError(f"no such incident: {incident_name!r}")
                body = push_body(record)
        message = _Message(incident_name, MANUAL, body, _new_webhook_id())
        sent = self._headers(message, timestamp)
        for name, value in (headers or {}).items():
            sent.pop(name.lower(), None)
            if value is not None:
                sent[name.lower()] = value
        with httpx.Client(verify=self._verify, trust_env=False) as client:
            try:
                response = client.post(
                    self.url, content=body, headers=sent, timeout=REQUEST_TIMEOUT_SECONDS
                )
            except httpx.HTTPError as error:
                self._record(message, 1, None, _describe(error))
                raise
        self._record(message, 1, response.status_code, None)
        return response.status_code

    # -- the rule: called by the store with the emulator's lock held ---------------------------

    def _observe(self, record: Record, event: str) -> None:
        if event not in self.on:
            return
        message = _Message(record.name, event, push_body(record), _new_webhook_id())
        self._schedule(message, 1, self.delay_seconds)

    def _schedule(self, message: _Message, attempt: int, after: float) -> None:
        with self._wake:
            if self._stopped:
                return
            due = _Due(time.monotonic() + after, next(_counter), message, attempt)
            heapq.heappush(self._due, due)
            self._wake.notify()

    # -- the playbook: the worker thread ---------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(
            verify=self._verify, trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS
        ) as client:
            while (due := self._next()) is not None:
                self._attempt(client, due)

    def _next(self) -> _Due | None:
        """The earliest message once it is due; None once stopped."""
        with self._wake:
            while not self._stopped:
                wait = self._due[0].at - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    return heapq.heappop(self._due)
                self._wake.wait(wait)
            return None

    def _attempt(self, client: httpx.Client, due: _Due) -> None:
        message = due.message
        status, error, retry_after = self._post(client, message)
        self._record(message, due.attempt, status, error)
        if (status is None or is_retryable(status)) and due.attempt <= len(RETRY_DELAYS):
            self._schedule(message, due.attempt + 1, retry_delay(due.attempt, retry_after))

    def _post(
        self, client: httpx.Client, message: _Message
    ) -> tuple[int | None, str | None, str | None]:
        """(status, error, Retry-After) of one POST; status None when no answer came."""
        try:
            response = client.post(
                self.url, content=message.body, headers=self._headers(message, None)
            )
        except httpx.HTTPError as error:
            return None, _describe(error), None
        return response.status_code, None, response.headers.get("retry-after")

    def _headers(self, message: _Message, timestamp: int | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._key is not None:
            at = int(time.time()) if timestamp is None else timestamp
            headers["webhook-id"] = message.webhook_id
            headers["webhook-timestamp"] = str(at)
            headers["webhook-signature"] = signature(
                self._key, message.webhook_id, at, message.body
            )
        if self._bearer is not None:
            headers["authorization"] = f"Bearer {self._bearer}"
        return headers

    def _record(
        self, message: _Message, attempt: int, status: int | None, error: str | None
    ) -> None:
        entry = Attempt(message.incident_name, message.event, attempt, status, error, time.time())
        with self._wake:
            self._log.append(entry)


def _check(url: str, bearer: str | None, delay: float, on: tuple[str, ...]) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError("the playbook's URL is http:// or https://")
    if bearer is not None and (not bearer or any(c in bearer for c in "\r\n")):
        raise ValueError("a bearer token is a non-empty single line")
    if not (math.isfinite(delay) and delay >= 0):
        raise ValueError("delay_seconds is a finite number >= 0")
    unknown = [event for event in on if event not in EVENTS]
    if unknown or not on:
        raise ValueError(f"`on` lists some of {EVENTS}, got {tuple(on)!r}")


def _new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"

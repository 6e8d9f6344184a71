"""The emulated automation rule + playbook: what it POSTs, how it signs, retries and stops.

Signatures are checked here by hand from the Standard Webhooks specification, not with any
code of the product or of the emulator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import ssl
import string
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge_emulator import Automation, Emulator
from sentinel_bridge_emulator import automation as automation_module
from sentinel_bridge_emulator.automation import (
    RETRY_AFTER_CAP_SECONDS,
    RETRY_DELAYS,
    retry_delay,
    signature,
)

from .conftest import WS_A, WS_B, serve_with_arm

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
TOKEN = "push-token-for-tests-0123456789"
PATH = "/v1/push/sentinel"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float


class Receiver:
    """A loopback HTTP server that records each POST and answers from a script (then 202);
    HTTPS when given a server certificate + key PEM."""

    def __init__(self, server_pem: str | None = None) -> None:
        self.requests: list[Received] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.changed:
                    receiver.requests.append(Received(self.path, headers, body, time.time()))
                    status, extra = receiver.answers.pop(0) if receiver.answers else (202, {})
                    receiver.changed.notify_all()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if server_pem is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(server_pem)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}{PATH}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.close()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(automation_module, "RETRY_DELAYS", (0.01, 0.02, 0.03, 0.04))


def verifies(secret: str, request: Received) -> bool:
    """The Standard Webhooks check, by hand: HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    head = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}."
    digest = hmac.new(key, head.encode() + request.body, hashlib.sha256).digest()
    wanted = "v1," + base64.b64encode(digest).decode()
    return any(
        hmac.compare_digest(part, wanted) for part in request.headers["webhook-signature"].split()
    )


def wait_for_attempts(automation: Automation, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(automation.log) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_created_incident_posts_the_signed_body(emu: Emulator, receiver: Receiver) -> None:
    """A new incident makes one POST to the URL whose body names it and whose signature
    verifies with the secret."""
    with emu.add_automation(WS_A, receiver.url, webhook_secret=SECRET):
        incident = emu.sentinel.create_incident(WS_A)
        [request] = receiver.wait_for(1)
    body = json.loads(request.body)
    assert request.path == PATH
    assert request.headers["content-type"] == "application/json"
    assert body == {
        "incidentArmId": incident["id"].replace("/incidents/", "/Incidents/"),
        "incidentName": incident["name"],
        "etag": incident["etag"],
        "incidentNumber": incident["properties"]["incidentNumber"],
        "workspaceInfo": {
            "SubscriptionId": WS_A.subscription_id,
            "ResourceGroupName": WS_A.resource_group,
            "WorkspaceName": WS_A.workspace_name,
        },
    }
    assert verifies(SECRET, request)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert "authorization" not in request.headers


def test_update_posts_the_new_etag_under_a_new_id(emu: Emulator, receiver: Receiver) -> None:
    """Modifying an incident POSTs again with its new etag and a different webhook-id."""
    with emu.add_automation(WS_A, receiver.url, webhook_secret=SECRET) as automation:
        incident = emu.sentinel.create_incident(WS_A)
        receiver.wait_for(1)
        changed = emu.sentinel.modify_incident(incident["name"], severity="High")
        first, second = receiver.wait_for(2)
        wait_for_attempts(automation, 2)
    assert json.loads(second.body)["etag"] == changed["etag"] != incident["etag"]
    assert second.headers["webhook-id"] != first.headers["webhook-id"]
    assert verifies(SECRET, second)
    assert [(a.incident_name, a.event, a.status) for a in automation.log] == [
        (incident["name"], "created", 202),
        (incident["name"], "updated", 202),
    ]


def test_comment_in_sentinel_counts_as_an_update(emu: Emulator, receiver: Receiver) -> None:
    """An analyst's comment moves the incident, so the rule fires an "updated" push."""
    with emu.add_automation(WS_A, receiver.url, webhook_secret=SECRET) as automation:
        incident = emu.sentinel.create_incident(WS_A)
        emu.sentinel.add_comment(incident["name"], "looking into it")
        receiver.wait_for(2)
        wait_for_attempts(automation, 2)
    assert [a.event for a in automation.log] == ["created", "updated"]


def test_bearer_mode_sends_the_token_unsigned(emu: Emulator, receiver: Receiver) -> None:
    """With a bearer token the POST carries `Authorization: Bearer` and no signature."""
    with emu.add_automation(WS_A, receiver.url, bearer_token=TOKEN):
        emu.sentinel.create_incident(WS_A)
        [request] = receiver.wait_for(1)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert not {"webhook-id", "webhook-signature", "webhook-timestamp"} & set(request.headers)


def test_https_with_the_given_ca(emu: Emulator) -> None:
    """Over HTTPS the playbook trusts `ca_path`; without it the unknown CA fails the POST."""
    receiver = Receiver(str(emu.tls.server_pem_path))
    receiver.start()
    try:
        with emu.add_automation(WS_A, receiver.url, ca_path=str(emu.tls.ca_path)) as trusting:
            incident = emu.sentinel.create_incident(WS_A)
            [request] = receiver.wait_for(1)
            wait_for_attempts(trusting, 1)
        with (
            emu.add_automation(WS_A, receiver.url) as doubting,
            pytest.raises(httpx.ConnectError),
        ):
            doubting.send_now(incident["name"])
    finally:
        receiver.close()
    assert json.loads(request.body)["incidentName"] == incident["name"]
    assert [a.status for a in trusting.log] == [202]
    assert doubting.log[0].status is None and "CERTIFICATE_VERIFY_FAILED" in str(
        doubting.log[0].error
    )


def test_only_its_workspace_and_its_events(emu: Emulator, receiver: Receiver) -> None:
    """A rule on workspace A with on=("created",) ignores A's updates and all of B."""
    with emu.add_automation(WS_A, receiver.url, on=("created",)) as automation:
        emu.sentinel.create_incident(WS_B)
        incident = emu.sentinel.create_incident(WS_A)
        emu.sentinel.modify_incident(incident["name"], severity="High")
        receiver.wait_for(1)
        time.sleep(0.3)  # room for a wrong second push to arrive
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["incidentName"] == incident["name"]
    assert [a.event for a in automation.log] == ["created"]


def test_delay_postpones_without_blocking_the_writer(emu: Emulator, receiver: Receiver) -> None:
    """With delay_seconds the POST comes that much later, and the write returns at once."""
    with emu.add_automation(WS_A, receiver.url, delay_seconds=0.6):
        began = time.time()
        emu.sentinel.create_incident(WS_A)
        returned = time.time()
        [request] = receiver.wait_for(1)
    assert returned - began < 0.2
    assert request.at - began >= 0.6


def test_retries_on_503_then_succeeds(emu: Emulator, receiver: Receiver) -> None:
    """503 twice then 202: three POSTs of the same message (same webhook-id), each signed
    afresh, and three log records numbered 1, 2, 3."""
    receiver.answers = [(503, {}), (503, {})]
    with emu.add_automation(WS_A, receiver.url, webhook_secret=SECRET) as automation:
        incident = emu.sentinel.create_incident(WS_A)
        requests = receiver.wait_for(3)
        wait_for_attempts(automation, 3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert all(verifies(SECRET, r) for r in requests)
    assert len({r.body for r in requests}) == 1
    assert [(a.attempt, a.status, a.error) for a in automation.log] == [
        (1, 503, None),
        (2, 503, None),
        (3, 202, None),
    ]
    assert all(a.incident_name == incident["name"] for a in automation.log)
    assert requests[1].at - requests[0].at >= RETRY_DELAYS[0] - 0.05


def test_retry_after_is_honoured(emu: Emulator, receiver: Receiver) -> None:
    """A 429 with Retry-After: 1 is retried no sooner than a second later."""
    receiver.answers = [(429, {"Retry-After": "1"})]
    with emu.add_automation(WS_A, receiver.url):
        emu.sentinel.create_incident(WS_A)
        first, second = receiver.wait_for(2)
    assert second.at - first.at >= 0.95


@pytest.mark.usefixtures("quick_retries")
def test_gives_up_after_four_retries(emu: Emulator, receiver: Receiver) -> None:
    """A playbook answered 500 every time tries five times in all, then stops."""
    receiver.answers = [(500, {})] * 10
    with emu.add_automation(WS_A, receiver.url) as automation:
        emu.sentinel.create_incident(WS_A)
        receiver.wait_for(5)
        time.sleep(0.3)
    assert len(receiver.requests) == 5
    assert [a.attempt for a in automation.log] == [1, 2, 3, 4, 5]


def test_client_errors_are_not_retried(emu: Emulator, receiver: Receiver) -> None:
    """401 (and other 4xx but 408 and 429) is final: one attempt only."""
    receiver.answers = [(401, {})]
    with emu.add_automation(WS_A, receiver.url) as automation:
        emu.sentinel.create_incident(WS_A)
        receiver.wait_for(1)
        time.sleep(RETRY_DELAYS[0] + 0.2)
    assert [(a.attempt, a.status) for a in automation.log] == [(1, 401)]


@pytest.mark.usefixtures("quick_retries")
def test_connection_errors_are_retried_and_logged(emu: Emulator) -> None:
    """Nobody listening: five attempts, each logged with no status and the error's name."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with emu.add_automation(WS_A, f"http://127.0.0.1:{port}{PATH}") as automation:
        emu.sentinel.create_incident(WS_A)
        wait_for_attempts(automation, 5)
        time.sleep(0.2)
    assert [a.attempt for a in automation.log] == [1, 2, 3, 4, 5]
    assert all(a.status is None and a.error and "ConnectError" in a.error for a in automation.log)


def test_stop_ends_the_worker_and_ignores_later_writes(emu: Emulator, receiver: Receiver) -> None:
    """After stop() a write sends nothing, the rule leaves the store, stop() again is fine."""
    automation = emu.add_automation(WS_A, receiver.url)
    automation.stop()
    emu.sentinel.create_incident(WS_A)
    time.sleep(0.2)
    automation.stop()
    assert automation.stopped and not automation._thread.is_alive()
    assert receiver.requests == [] and automation.log == []
    assert emu.sentinel.store(WS_A).listeners == []


def test_stop_drops_what_was_still_waiting(emu: Emulator, receiver: Receiver) -> None:
    """A push still in its delay when the rule stops is never sent."""
    automation = emu.add_automation(WS_A, receiver.url, delay_seconds=0.5)
    emu.sentinel.create_incident(WS_A)
    assert automation.pending == 1
    automation.stop()
    time.sleep(0.7)
    assert receiver.requests == [] and automation.pending == 0


async def test_api_writes_fire_and_serve_exit_stops(emu: Emulator, receiver: Receiver) -> None:
    """An incident PUT through ARM fires the rule like a test hook does, and the end of
    serve() stops every rule."""
    automation = emu.add_automation(WS_A, receiver.url, webhook_secret=SECRET)
    name = str(uuid.uuid4())
    async with serve_with_arm(emu) as arm:
        body = {"properties": {"title": "Made by API", "severity": "Low", "status": "New"}}
        assert (await arm.put(arm.url(WS_A, f"/{name}"), body)).status_code == 201
        [request] = receiver.wait_for(1)
    assert json.loads(request.body)["incidentName"] == name
    assert automation.stopped and emu.automations == []


def test_send_now_returns_the_status_and_takes_hostile_headers(
    emu: Emulator, receiver: Receiver
) -> None:
    """send_now POSTs synchronously; `headers` remove or replace signed headers and
    `timestamp` is the one signed."""
    receiver.answers = [(401, {})]
    with emu.add_automation(WS_A, receiver.url, webhook_secret=SECRET) as automation:
        incident = emu.sentinel.create_incident(WS_A)
        receiver.wait_for(1)
        status = automation.send_now(
            incident["name"], headers={"Webhook-Signature": None, "X-Extra": "1"}
        )
        stale = automation.send_now(incident["name"], timestamp=1_000_000_000)
        other = automation.send_now("label", body=b"[1, 2]", headers={"content-type": "text/a"})
    _created, unsigned, old, raw = receiver.requests
    assert status == 202 and stale == 202 and other == 202  # the 401 went to the first push
    assert "webhook-signature" not in unsigned.headers and unsigned.headers["x-extra"] == "1"
    assert old.headers["webhook-timestamp"] == "1000000000" and verifies(SECRET, old)
    assert raw.body == b"[1, 2]" and raw.headers["content-type"] == "text/a"
    assert verifies(SECRET, raw)
    assert [a.event for a in automation.log] == ["created", "manual", "manual", "manual"]


def test_send_now_needs_an_existing_incident_unless_given_a_body(
    emu: Emulator, receiver: Receiver
) -> None:
    """send_now of an unknown incident without a body is a KeyError, and nothing is sent."""
    with (
        emu.add_automation(WS_A, receiver.url) as automation,
        pytest.raises(KeyError, match="no such incident"),
    ):
        automation.send_now("no-such-incident")
    assert receiver.requests == []


def test_send_now_raises_connection_errors(emu: Emulator) -> None:
    """send_now to a closed port raises httpx's error and logs it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with emu.add_automation(WS_A, f"http://127.0.0.1:{port}{PATH}") as automation:
        with pytest.raises(httpx.ConnectError):
            automation.send_now("x", body=b"{}")
        assert [(a.event, a.status) for a in automation.log] == [("manual", None)]


@pytest.mark.parametrize(
    "secret",
    ["", "whsec_", "nope_c2VjcmV0", "whsec_not base64!!", "whsec_c2VjcmV0\n", "WHSEC_c2VjcmV0"],
)
def test_bad_secrets_are_refused_without_echo(emu: Emulator, secret: str) -> None:
    """A secret without the prefix, empty, or not base64 is a ValueError not naming it."""
    with pytest.raises(ValueError) as caught:
        emu.add_automation(WS_A, "http://127.0.0.1:1/", webhook_secret=secret)
    hidden = secret.removeprefix("whsec_").strip()
    assert not hidden or hidden not in str(caught.value)
    assert emu.automations == [] and emu.sentinel.store(WS_A).listeners == []


@pytest.mark.parametrize(
    "arguments",
    [
        {"url": "ftp://127.0.0.1/"},
        {"url": ""},
        {"on": ("deleted",)},
        {"on": ()},
        {"on": "created"},
        {"delay_seconds": -1.0},
        {"delay_seconds": float("nan")},
        {"delay_seconds": float("inf")},
        {"bearer_token": ""},
        {"bearer_token": "abc\r\nX-Injected: 1"},
    ],
)
def test_bad_arguments_are_refused(emu: Emulator, arguments: dict[str, Any]) -> None:
    """A wrong URL scheme, unknown or no events, a negative or non-finite delay, or an
    empty or multi-line token is a ValueError, and no rule is added."""
    given_arguments = {"url": "http://127.0.0.1:1/", **arguments}
    with pytest.raises(ValueError):
        emu.add_automation(WS_A, **given_arguments)
    assert emu.automations == []


def test_repr_names_no_secret(emu: Emulator) -> None:
    """Neither the secret nor the token shows in the rule's repr or its log records."""
    with emu.add_automation(
        WS_A, "http://127.0.0.1:1/", webhook_secret=SECRET, bearer_token=TOKEN
    ) as automation:
        text = repr(automation)
    assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
    assert TOKEN not in text and WS_A.key in text


def test_signature_matches_the_reference_vector() -> None:
    """The signature of the Standard Webhooks libraries' published test vector."""
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    got = signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@given(
    key=st.binary(min_size=1, max_size=64),
    webhook_id=st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=40),
    timestamp=st.integers(min_value=0, max_value=2**40),
    body=st.binary(max_size=512),
)
def test_signature_verifies_by_hand(
    key: bytes, webhook_id: str, timestamp: int, body: bytes
) -> None:
    """For any key, id, timestamp and body the signature is the spec's HMAC, computed here."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    assert signature(key, webhook_id, timestamp, body) == "v1," + base64.b64encode(digest).decode()


@given(retry=st.integers(min_value=-5, max_value=50), retry_after=st.none() | st.text(max_size=40))
def test_retry_delay_is_bounded(retry: int, retry_after: str | None) -> None:
    """Whatever Retry-After says (garbage, negative, huge, a date), the wait is between 0 and
    the cap, and without a usable one it is one of the policy's delays."""
    delay = retry_delay(retry, retry_after)
    assert 0.0 <= delay <= max(RETRY_AFTER_CAP_SECONDS, *RETRY_DELAYS)
    if retry_after is None:
        assert delay in RETRY_DELAYS


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("99999", RETRY_AFTER_CAP_SECONDS), ("nan", 0.5),
     ("soon", 0.5), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)  # fmt: skip
def test_retry_delay_reads_retry_after(retry_after: str, expected: float) -> None:
    """Seconds are taken as given within [0, cap]; an unreadable value falls back to the
    first policy delay; a past date means now."""
    assert retry_delay(1, retry_after) == pytest.approx(expected)

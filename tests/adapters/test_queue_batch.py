"""The queue adapter's optional batch endpoint (capabilities, POST /v1/alerts:batch), against
respx."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.queue_http import (
    CAPABILITIES_RECHECK_SECONDS,
    MAX_BATCH_ALERTS,
    HttpQueue,
)
from sentinel_bridge.core.ports import (
    BatchQueue,
    PutOutcome,
    PutResult,
    Refused,
    RetryLater,
    SendSingly,
)

BASE = "https://soar.example.net/central-queue"
CAPABILITIES = f"{BASE}/v1/capabilities"
BATCH = f"{BASE}/v1/alerts:batch"
A, B, C = "alert-a", "alert-b", "alert-c"
ITEMS = [(A, {"revision": "1"}), (B, {"revision": "2"}), (C, {"revision": "3"})]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@functools.cache
def _http() -> httpx.AsyncClient:
    """One client for every test (respx answers its requests): building one takes ~0.1 s."""
    return httpx.AsyncClient()


def make_queue(batch: bool = True, clock: Clock | None = None) -> HttpQueue:
    return HttpQueue(BASE, "queue-token", _http(), batch=batch, clock=clock or Clock())


def answering(status: int, payload: Any) -> HttpQueue:
    """A queue adapter whose every request gets `payload` as JSON (NaN and all), without
    respx: hypothesis runs it hundreds of times."""
    content = json.dumps(payload).encode()
    transport = httpx.MockTransport(lambda _request: httpx.Response(status, content=content))
    return HttpQueue(BASE, "queue-token", httpx.AsyncClient(transport=transport))


def advertise(limit: Any = 10) -> respx.Route:
    return respx.get(CAPABILITIES).respond(
        200, json={"contract": "v1", "alerts_batch": {"max_alerts": limit}}
    )


def results(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(entries)}


def kind(result: PutResult) -> object:
    """What a result means for the item, without the wording of its reason."""
    if isinstance(result, PutOutcome):
        return result
    return (type(result).__name__, getattr(result, "delay", None))


# -- capabilities -------------------------------------------------------------------------------


@respx.mock
async def test_advertised_batches_are_used_and_asked_once() -> None:
    """An advertised max_alerts is the batch limit; GET /v1/capabilities is sent only once."""
    route = advertise(25)
    queue = make_queue()
    assert isinstance(queue, BatchQueue)
    assert [await queue.batch_limit() for _ in range(3)] == [25, 25, 25]
    assert route.call_count == 1
    assert route.calls.last.request.headers["Authorization"] == "Bearer queue-token"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404),
        httpx.Response(503),
        httpx.Response(401),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, content=b"[" * 100_000),  # deeper than the parser goes
        httpx.Response(200, json={"contract": "v1"}),
        httpx.Response(200, json={"contract": "v1", "alerts_batch": True}),
        httpx.Response(200, json={"alerts_batch": {"max_alerts": 0}}),
        httpx.Response(200, json={"alerts_batch": {"max_alerts": -5}}),
        httpx.Response(200, json={"alerts_batch": {"max_alerts": True}}),
        httpx.Response(200, json={"alerts_batch": {"max_alerts": 10.0}}),
        httpx.Response(200, json={"alerts_batch": {"max_alerts": "10"}}),
        httpx.Response(200, json={"alerts_batch": {}}),
        httpx.Response(200, json=[{"alerts_batch": {"max_alerts": 10}}]),
    ],
)
@respx.mock
async def test_no_usable_capabilities_mean_single_puts(answer: httpx.Response) -> None:
    """A 404, an error or anything but a positive integer max_alerts: no batches, no raise."""
    respx.get(CAPABILITIES).mock(return_value=answer)
    assert await make_queue().batch_limit() == 0


@respx.mock
async def test_unreachable_capabilities_mean_single_puts() -> None:
    """No answer at all (refused, timeout) is no batch either, never an error."""
    respx.get(CAPABILITIES).mock(side_effect=httpx.ConnectError("refused"))
    assert await make_queue().batch_limit() == 0


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=JSON)
async def test_any_json_as_capabilities_is_a_limit_or_none(payload: Any) -> None:
    """Whatever JSON the queue sends, the limit is 0 or the positive max_alerts it gave."""
    limit = await answering(200, payload).batch_limit()
    batch = payload.get("alerts_batch") if isinstance(payload, dict) else None
    given_limit = batch.get("max_alerts") if isinstance(batch, dict) else None
    if type(given_limit) is int and given_limit > 0:
        assert limit == min(given_limit, MAX_BATCH_ALERTS)
    else:
        assert limit == 0


@respx.mock
async def test_a_huge_max_alerts_is_capped() -> None:
    """However many alerts a queue offers to take, one request carries at most the cap."""
    advertise(10**30)
    assert await make_queue().batch_limit() == MAX_BATCH_ALERTS


@respx.mock
async def test_no_batches_are_asked_again_after_a_few_minutes() -> None:
    """A queue that offered nothing is asked again only after the recheck interval."""
    clock = Clock()
    route = respx.get(CAPABILITIES).respond(404)
    queue = make_queue(clock=clock)
    assert await queue.batch_limit() == 0
    clock.now = CAPABILITIES_RECHECK_SECONDS - 1
    assert await queue.batch_limit() == 0
    assert route.call_count == 1
    advertise(7)
    clock.now = CAPABILITIES_RECHECK_SECONDS
    assert await queue.batch_limit() == 7


@respx.mock(assert_all_called=False)
async def test_batch_off_never_asks() -> None:
    """`[queue] batch = "off"`: no capabilities request, limit 0 whatever the queue offers."""
    route = advertise(50)
    assert await make_queue(batch=False).batch_limit() == 0
    assert route.call_count == 0


async def test_untrusted_certificate_on_capabilities_is_no_batch(
    untrusted_port: int, other_ca_bundle: Path
) -> None:
    """A certificate failure on GET /v1/capabilities means single PUTs (which then report
    it), remembered in tls_failure, not raised."""
    http = build_http_client(other_ca_bundle, timeout=5)
    queue = HttpQueue(f"https://127.0.0.1:{untrusted_port}/q", "queue-token", http)
    async with http:
        assert await queue.batch_limit() == 0
    assert queue.tls_failure is not None


# -- POST /v1/alerts:batch ---------------------------------------------------------------------


@respx.mock
async def test_batch_request_carries_every_alert_with_its_body() -> None:
    """One POST under the base URL's prefix: {"alerts": [{"alert_id", "body"}, ...]}."""
    route = respx.post(BATCH).respond(
        200, json=results(*({"alert_id": a, "status": 201} for a, _ in ITEMS))
    )
    answer = await make_queue().put_alerts(ITEMS)
    assert answer == [PutOutcome.CREATED] * 3
    request = route.calls.last.request
    assert request.url.path == "/central-queue/v1/alerts:batch"
    assert request.headers["Authorization"] == "Bearer queue-token"
    assert json.loads(request.content) == {
        "alerts": [{"alert_id": a, "body": body} for a, body in ITEMS]
    }


@pytest.mark.parametrize("status", [201, 200, 204, 409, 400, 413, 422, 429, 500, 503, 401, 404])
@respx.mock
async def test_each_alert_result_means_what_its_own_put_would(status: int) -> None:
    """An alert's status in a batch maps exactly as the same status of its single PUT."""
    respx.put(f"{BASE}/v1/alerts/{A}").respond(status, json={"error": {"message": "why"}})
    single = await make_queue().put_alert(A, {})
    respx.post(BATCH).respond(
        200, json=results({"alert_id": A, "status": status, "error": {"message": "why"}})
    )
    answer = await make_queue().put_alerts([(A, {})])
    assert isinstance(answer, list) and len(answer) == 1
    assert kind(answer[0]) == kind(single)
    if not isinstance(single, PutOutcome):
        assert not isinstance(answer[0], PutOutcome)
        assert answer[0].reason.endswith(f"[{A}]: {status} why")


@respx.mock
async def test_results_are_matched_by_alert_id_not_position() -> None:
    """Results in another order still go to their own alerts."""
    respx.post(BATCH).respond(200, json=results(
        {"alert_id": C, "status": 409}, {"alert_id": A, "status": 201},
        {"alert_id": B, "status": 400, "error": {"message": "title missing"}},
    ))  # fmt: skip
    answer = await make_queue().put_alerts(ITEMS)
    assert isinstance(answer, list)
    assert answer[0] is PutOutcome.CREATED and answer[2] is PutOutcome.STALE
    assert answer[1] == Refused(
        f"queue POST /central-queue/v1/alerts:batch [{B}]: 400 title missing"
    )


@respx.mock
async def test_missing_or_garbled_results_are_retry_later_for_that_alert() -> None:
    """A result that is missing, has no integer status, or is given twice: retry that alert."""
    respx.post(BATCH).respond(200, json=results(
        {"alert_id": A, "status": "201"},
        {"alert_id": B, "status": 201}, {"alert_id": B, "status": 400},
        {"alert_id": "someone-else", "status": 201}, "junk", None, {"status": 201},
    ))  # fmt: skip
    answer = await make_queue().put_alerts(ITEMS)
    assert isinstance(answer, list) and len(answer) == 3
    assert all(isinstance(result, RetryLater) for result in answer)


@pytest.mark.parametrize(
    "content", [b"not json", b"[" * 100_000, b"[]", b'{"results": {}}', b'{"results": null}', b"7"]
)
@respx.mock
async def test_a_200_without_results_is_retry_later_for_every_alert(content: bytes) -> None:
    """A 200 whose body has no results array: every alert is tried again."""
    respx.post(BATCH).respond(200, content=content)
    answer = await make_queue().put_alerts(ITEMS)
    assert isinstance(answer, list) and len(answer) == 3
    assert all(isinstance(result, RetryLater) and result.delay is None for result in answer)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=JSON, entries=st.lists(JSON, max_size=5))
async def test_any_json_answer_gives_one_result_per_alert(payload: Any, entries: list[Any]) -> None:
    """Whatever JSON a 200 carries (as a whole or as results), one result per alert, no raise."""
    shaped = [{"alert_id": A, "status": entry, "error": entry} for entry in entries]
    for body in (payload, {"results": entries}, {"results": shaped}):
        answer = await answering(200, body).put_alerts(ITEMS)
        assert isinstance(answer, list) and len(answer) == 3
        assert all(isinstance(r, (PutOutcome, Refused, RetryLater)) for r in answer)


@pytest.mark.parametrize(
    ("status", "headers", "delay"),
    [(503, {}, None), (500, {}, None), (401, {}, None), (429, {"Retry-After": "30"}, 30.0),
     (429, {}, 1.0)],
)  # fmt: skip
@respx.mock
async def test_whole_batch_failures_retry_every_alert(
    status: int, headers: dict[str, str], delay: float | None
) -> None:
    """401, 429 (after its Retry-After) and 5xx of the request: every alert later, none
    refused."""
    respx.post(BATCH).respond(status, headers=headers)
    answer = await make_queue().put_alerts(ITEMS)
    assert isinstance(answer, list) and len(answer) == 3
    assert all(isinstance(r, RetryLater) and r.delay == delay for r in answer)


@respx.mock
async def test_no_answer_to_a_batch_retries_every_alert() -> None:
    """A timeout or a reset connection: every alert of the batch is tried again."""
    respx.post(BATCH).mock(side_effect=httpx.ReadTimeout("slow"))
    answer = await make_queue().put_alerts(ITEMS)
    assert isinstance(answer, list)
    assert all(isinstance(r, RetryLater) and r.reason.endswith("timeout") for r in answer)


@pytest.mark.parametrize("status", [400, 413, 422])
@respx.mock
async def test_a_batch_refused_as_a_whole_is_sent_singly(status: int) -> None:
    """A request too large or malformed as a whole parks nothing: PUT each alert instead."""
    advertise(10)
    respx.post(BATCH).respond(status, json={"error": {"message": "too big"}})
    queue = make_queue()
    assert await queue.batch_limit() == 10
    answer = await queue.put_alerts(ITEMS)
    assert answer == SendSingly(f"queue POST /central-queue/v1/alerts:batch: {status} too big")
    assert await queue.batch_limit() == 10  # the next batch is tried again


@pytest.mark.parametrize("status", [404, 405, 501])
@respx.mock
async def test_a_batch_route_that_is_gone_stops_batches_for_a_while(status: int) -> None:
    """An advertised route answering 404/405/501: single PUTs, and no batch until the
    capabilities are asked again."""
    clock = Clock()
    route = advertise(10)
    respx.post(BATCH).respond(status)
    queue = make_queue(clock=clock)
    assert await queue.batch_limit() == 10
    assert isinstance(await queue.put_alerts(ITEMS), SendSingly)
    assert await queue.batch_limit() == 0
    clock.now = CAPABILITIES_RECHECK_SECONDS
    assert await queue.batch_limit() == 10
    assert route.call_count == 2


async def test_repeated_alert_ids_are_sent_singly() -> None:
    """Alert ids must be unique within a batch: such a batch is never sent."""
    answer = await make_queue().put_alerts([(A, {}), (A, {})])
    assert isinstance(answer, SendSingly)


@respx.mock
async def test_a_result_without_a_string_message_is_named_by_its_status() -> None:
    """A per-alert error whose message is no string gives the status phrase instead."""
    respx.post(BATCH).respond(
        200, json=results({"alert_id": A, "status": 422, "error": {"message": [[1]]}})
    )
    answer = await make_queue().put_alerts([(A, {})])
    assert answer == [
        Refused(f"queue POST /central-queue/v1/alerts:batch [{A}]: 422 Unprocessable Entity")
    ]

"""Request bodies: orjson's bytes where exact, the json module's where orjson falls short."""

from __future__ import annotations

import json
import math

import httpx
import respx
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.json_body import json_bytes
from sentinel_bridge.adapters.queue_http import HttpQueue

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_what_is_written_reads_back_as_the_same_value(value: object) -> None:
    """Any JSON value, huge integers and any text included, survives the round trip exactly."""
    assert json.loads(json_bytes(value)) == value


def test_an_integer_past_64_bits_is_written_exactly() -> None:
    """orjson refuses 2**70; the json module writes it digit for digit."""
    assert json_bytes({"n": 2**70, "t": "é"}) == '{"n":1180591620717411303424,"t":"é"}'.encode()


def test_nan_and_infinities_become_null() -> None:
    """Not JSON: written as null, so that a strict reader still takes the body, beside a huge
    integer (the json module's path) too."""
    assert json.loads(json_bytes([math.nan, math.inf, -math.inf, 1.5])) == [None, None, None, 1.5]
    mixed = {"n": 2**70, "x": [math.nan, {"y": -math.inf}], "t": (1, math.inf)}
    assert json.loads(json_bytes(mixed)) == {"n": 2**70, "x": [None, {"y": None}], "t": [1, None]}


async def test_an_alert_is_put_as_json_with_its_content_type() -> None:
    """The queue gets the alert's JSON bytes, declared application/json, NaN as null."""
    async with build_http_client(None, 5.0) as http, respx.mock() as mock:
        route = mock.put("https://queue.test/v1/alerts/a1").mock(
            return_value=httpx.Response(201, json={})
        )
        queue = HttpQueue("https://queue.test", "tok", http, batch=False)
        await queue.put_alert("a1", {"revision": "r", "score": math.nan, "big": 2**70})
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.content) == {"revision": "r", "score": None, "big": 2**70}

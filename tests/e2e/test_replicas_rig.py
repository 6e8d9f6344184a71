"""The replica rig's verdict on repeated PUTs (replicas.py), without processes or a store."""

from __future__ import annotations

from sentinel_bridge_emulator.queue import PutRecord

from .replicas import Lifetime, repeated_puts

ALERT = "0f8fad5b-d9cb-469f-a165-70867728950e"
REVISION = "2026-12-02T10:00:00Z"


def put(client: str, at: float, revision: str = REVISION, status: int = 200) -> PutRecord:
    return PutRecord(ALERT, revision, status, at, client)


def test_a_repeat_is_explained_only_by_its_first_sender_dying_or_pausing_in_between() -> None:
    """Killed or paused between the two PUTs (or just after its own): explained; killed
    after the repeat, never interrupted, or the same live sender twice: unexplained."""
    replicas = {
        "killed": Lifetime(killed_at=10.5),
        "paused": Lifetime(paused=(20.0, 27.0)),
        "alive": Lifetime(),
    }
    explained = [put("killed", 10.0), put("alive", 12.0, status=201)]
    in_flight = [put("killed", 11.2, "b"), put("alive", 13.0, "b")]
    paused = [put("paused", 19.5, "c"), put("alive", 25.0, "c")]
    killed_later = [put("killed", 1.0, "d"), put("alive", 2.0, "d")]
    twice = [put("alive", 30.0, "e"), put("alive", 31.0, "e")]
    refused = [put("alive", 40.0, "f"), put("alive", 41.0, "f", status=503)]
    unexplained, count = repeated_puts(
        explained + in_flight + paused + killed_later + twice + refused, replicas
    )
    assert count == 3
    assert [line.split(" by ")[0] for line in unexplained] == [
        f"('{ALERT}', 'd')",
        f"('{ALERT}', 'e')",
    ]

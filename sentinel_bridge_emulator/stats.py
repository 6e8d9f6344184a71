"""Counters that tests and benchmarks read: requests by status, throttling, token requests."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EmulatorStats:
    """A snapshot; taking one never blocks the servers for long."""

    token_requests: dict[str, int]  # tenant id -> token endpoint calls (any outcome)
    tokens_issued: dict[str, int]  # tenant id -> access tokens handed out
    arm_requests: dict[str, dict[int, int]]  # subscription id -> status -> count
    arm_throttled: dict[str, int]  # subscription id -> 429s from an empty bucket
    arm_operations: dict[str, int]  # list, get, put, delete, alerts, entities, comments...
    queue_requests: dict[int, int]  # status -> count

    def arm_total(self, subscription_id: str | None = None) -> int:
        rows = (
            [self.arm_requests.get(subscription_id, {})]
            if subscription_id is not None
            else list(self.arm_requests.values())
        )
        return sum(sum(row.values()) for row in rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "arm_requests": {
                sub: {str(k): v for k, v in row.items()} for sub, row in self.arm_requests.items()
            },
            "arm_throttled": self.arm_throttled,
            "arm_operations": self.arm_operations,
            "queue_requests": {str(k): v for k, v in self.queue_requests.items()},
        }


@dataclass(slots=True)
class Counters:
    """Mutable counters; callers hold the emulator lock while touching them."""

    token_requests: Counter[str] = field(default_factory=Counter)
    tokens_issued: Counter[str] = field(default_factory=Counter)
    arm_requests: defaultdict[str, Counter[int]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    arm_throttled: Counter[str] = field(default_factory=Counter)
    arm_operations: Counter[str] = field(default_factory=Counter)
    queue_requests: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> EmulatorStats:
        return EmulatorStats(
            token_requests=dict(self.token_requests),
            tokens_issued=dict(self.tokens_issued),
            arm_requests={sub: dict(row) for sub, row in self.arm_requests.items()},
            arm_throttled=dict(self.arm_throttled),
            arm_operations=dict(self.arm_operations),
            queue_requests=dict(self.queue_requests),
        )

    def reset(self) -> None:
        for counter in (
            self.token_requests,
            self.tokens_issued,
            self.arm_throttled,
            self.arm_operations,
            self.queue_requests,
        ):
            counter.clear()
        self.arm_requests.clear()

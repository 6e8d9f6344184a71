"""Faults a test can switch on at runtime: random 5xx, added latency, one-shot responses,
and nextLinks that misbehave (the client must refuse a foreign host and stop on a repeat)."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .json_types import JsonObject


@dataclass(frozen=True, slots=True)
class InjectedResponse:
    """What to answer instead of the real handler."""

    status: int
    retry_after: int | None = None
    body: JsonObject | None = None

    def error_body(self) -> JsonObject:
        if self.body is not None:
            return self.body
        return error_body(self.status, "Injected fault.")

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}


def error_code(status: int) -> str:
    """ARM-style error code for a status ('ServiceUnavailable', 'TooManyRequests', ...)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"Status{status}"
    return "".join(word.capitalize() for word in re.split(r"[\s-]+", phrase))


def error_body(status: int, message: str, code: str | None = None) -> JsonObject:
    return {"error": {"code": code or error_code(status), "message": message}}


@dataclass(slots=True)
class _Rule:
    response: InjectedResponse
    remaining: int
    method: str | None
    path: re.Pattern[str] | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass(slots=True)
class Faults:
    """Runtime-switchable faults of one emulated service. Thread-safe."""

    error_rate: float = 0.0  # probability of answering `error_status` to any request
    error_status: int = 503
    latency_ms: float = 0.0
    foreign_next_link: str | None = None  # base URL nextLinks point to instead of ours
    repeat_next_link: bool = False  # a follow-up page links to itself
    seed: int = 0
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._random.seed(self.seed)

    def inject(
        self,
        status: int,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
        body: JsonObject | None = None,
    ) -> None:
        """Answer the next `count` requests matching method and path regex with `status`."""
        rule = _Rule(
            response=InjectedResponse(status=status, retry_after=retry_after, body=body),
            remaining=count,
            method=method.upper() if method else None,
            path=re.compile(path, re.IGNORECASE) if path else None,
        )
        with self._lock:
            self._rules.append(rule)

    def pending(self) -> int:
        """One-shot responses not yet used."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def configure(self, **settings: Any) -> None:
        """Set several public knobs at once (used by the control API)."""
        allowed = {
            "error_rate",
            "error_status",
            "latency_ms",
            "foreign_next_link",
            "repeat_next_link",
        }
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        if not 0.0 <= float(settings.get("error_rate", self.error_rate)) <= 1.0:
            raise ValueError("error_rate must be within 0..1")
        for name, value in settings.items():
            setattr(self, name, value)

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._rules.clear()
        self.error_rate = 0.0
        self.latency_ms = 0.0
        self.foreign_next_link = None
        self.repeat_next_link = False

    def pick(self, method: str, path: str) -> InjectedResponse | None:
        """The fault to serve for this request, if any (consumes one-shot rules)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule.response
            if self.error_rate > 0 and self._random.random() < self.error_rate:
                return InjectedResponse(status=self.error_status)
        return None

    def describe(self) -> JsonObject:
        return {
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "latency_ms": self.latency_ms,
            "foreign_next_link": self.foreign_next_link,
            "repeat_next_link": self.repeat_next_link,
            "pending_injections": self.pending(),
        }

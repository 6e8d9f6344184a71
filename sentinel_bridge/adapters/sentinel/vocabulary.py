"""Sentinel's words and the SOC's: `FalsePositive` <-> `false_positive`, and so on.

The central queue's contract uses Sentinel's vocabulary in snake case. Every Sentinel enum is
"modelAsString", so a value never seen before is converted the same way rather than refused:
`Critical` becomes `critical`.
"""

from __future__ import annotations

import re

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(value: str) -> str:
    """`TruePositive` -> `true_positive`, `SuspiciousButExpected` -> `suspicious_but_expected`."""
    spaced = _WORD_BOUNDARY.sub("_", value.strip())
    return re.sub(r"[\s\-]+", "_", spaced).lower()


def optional_snake(value: str | None) -> str | None:
    return snake_case(value) if value else None


# The other way: the SOC's words for what Sentinel accepts in a write.
STATUSES = {"new": "New", "active": "Active", "closed": "Closed"}
CLASSIFICATIONS = {
    "undetermined": "Undetermined",
    "true_positive": "TruePositive",
    "benign_positive": "BenignPositive",
    "false_positive": "FalsePositive",
}
REASONS = {
    "suspicious_activity": "SuspiciousActivity",
    "suspicious_but_expected": "SuspiciousButExpected",
    "incorrect_alert_logic": "IncorrectAlertLogic",
    "inaccurate_data": "InaccurateData",
}

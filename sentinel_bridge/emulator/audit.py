"""Does the emulated queue tell the same story as the emulated Sentinel? For the demo,
the end-to-end tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..model import alert_id_for
from ..sync.mapping import snake_case
from .core import Emulator
from .options import EmulatedWorkspace


@dataclass(frozen=True)
class Audit:
    incidents: int
    alerts: int
    missing_or_behind: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing_or_behind and not self.duplicated


def _content(title: Any, severity: Any, status: Any) -> tuple[str, str, str]:
    return (str(title), snake_case(str(severity)), snake_case(str(status)))


def is_current(incident: dict[str, Any], alert: dict[str, Any] | None) -> bool:
    """The alert shows what the incident shows now, and is no newer than it.

    A modification that only moved lastModifiedTimeUtc is not re-sent by design, so this
    compares what an analyst sees rather than the revision alone.
    """
    if alert is None:
        return False
    props = incident["properties"]
    same = _content(props["title"], props["severity"], props["status"]) == _content(
        alert.get("title"), alert.get("severity"), alert.get("status")
    )
    return same and str(alert.get("revision")) <= str(props["lastModifiedTimeUtc"])


def audit(emulator: Emulator, workspaces: Iterable[EmulatedWorkspace]) -> Audit:
    """Every incident of `workspaces` against the queue: missing, behind, created twice."""
    alerts = emulator.queue.alerts
    incidents = [i for ws in workspaces for i in emulator.sentinel.incidents(ws)]
    behind = [
        str(i["name"]) for i in incidents if not is_current(i, alerts.get(alert_id_for(i["id"])))
    ]
    duplicated = {a: n for a, n in emulator.queue.creates.items() if n > 1}
    return Audit(len(incidents), len(alerts), behind, duplicated)

"""Does the emulated TheHive tell the same story as the emulated Sentinel? For the demo and
the end-to-end tests with `[queue] type = "thehive"`.

Like audit.py, an oracle: it derives what TheHive should hold from the bridge's documented
TheHive mapping (README, TheHive section) by its own rules, and shares no code with the
bridge's adapter. For every incident, exactly one alert was created (one 201 answer to a
create of its type, source and sourceRef), in its tenant's organisation and nowhere else,
and that alert shows what an analyst should see now:
- type "sentinel-incident", source "sentinel-bridge", sourceRef = the contract's alert id;
- title = the incident's title; severity High/Medium/Low -> 3/2/1, Informational -> 1,
  anything else -> 2;
- the description's `- Sentinel revision: <ISO-8601>` row (the last one) is no newer than
  the incident's lastModifiedTimeUtc. A modification that only moved lastModifiedTimeUtc is
  not re-sent by design, so "not older" would be wrong: what is compared is what is shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .audit import Audit, expected_alert_id
from .core import Emulator
from .options import EmulatedWorkspace
from .timefmt import parse_ts

ALERT_TYPE = "sentinel-incident"
ALERT_SOURCE = "sentinel-bridge"
SEVERITY = {"High": 3, "Medium": 2, "Low": 1, "Informational": 1}
OTHER_SEVERITY = 2
REVISION_ROW = "- Sentinel revision: "


def expected_severity(sentinel_severity: str) -> int:
    """TheHive's 1-4 for Sentinel's severity word."""
    return SEVERITY.get(sentinel_severity, OTHER_SEVERITY)


def revision_shown(alert: Mapping[str, Any]) -> datetime | None:
    """The instant of the description's last `Sentinel revision` row; None without one or
    when it does not parse."""
    description = alert.get("description")
    if not isinstance(description, str):
        return None
    rows = [line for line in description.splitlines() if line.startswith(REVISION_ROW)]
    if not rows:
        return None
    try:
        return parse_ts(rows[-1].removeprefix(REVISION_ROW))
    except ValueError:
        return None


def is_current(incident: Mapping[str, Any], alert: Mapping[str, Any] | None) -> bool:
    """The alert shows the incident's title and mapped severity, at a revision no newer
    than the incident's last modification."""
    if alert is None:
        return False
    props = incident["properties"]
    if alert.get("title") != props["title"]:
        return False
    if alert.get("severity") != expected_severity(str(props["severity"])):
        return False
    shown = revision_shown(alert)
    return shown is not None and shown <= parse_ts(str(props["lastModifiedTimeUtc"]))


def _is_bridge_alert(alert: Mapping[str, Any]) -> bool:
    return alert.get("type") == ALERT_TYPE and alert.get("source") == ALERT_SOURCE


def thehive_audit(emulator: Emulator, organisations: Mapping[EmulatedWorkspace, str]) -> Audit:
    """Every incident of the workspaces in `organisations` (workspace -> the TheHive
    organisation of its tenant) against the emulator's TheHive: `missing_or_behind` names
    the incidents without a current alert in their organisation, or with one in another;
    `duplicated` counts, by sourceRef, the alerts created more than once (in any
    organisations together); `alerts` is how many bridge alerts TheHive holds."""
    hive = emulator.thehive
    created: Counter[str] = Counter()
    created_in: Counter[tuple[str | None, str]] = Counter()
    for (organisation, type_, source, source_ref), count in hive.creates.items():
        if type_ == ALERT_TYPE and source == ALERT_SOURCE and source_ref is not None:
            created[source_ref] += count
            created_in[(organisation, source_ref)] += count
    held: dict[str, dict[str, Any]] = {}  # sourceRef -> organisation -> alert
    for alert in hive.alerts():
        if _is_bridge_alert(alert):
            where = hive.organisation_of(str(alert["_id"]))
            held.setdefault(str(alert["sourceRef"]), {})[str(where)] = alert
    incidents = 0
    behind: list[str] = []
    for workspace, organisation in organisations.items():
        for incident in emulator.sentinel.incidents(workspace):
            incidents += 1
            ref = expected_alert_id(str(incident["id"]))
            places = held.get(ref, {})
            right_place = set(places) == {organisation}
            once_there = created_in[(organisation, ref)] == 1
            if not (right_place and once_there and is_current(incident, places[organisation])):
                behind.append(str(incident["name"]))
    duplicated = {ref: count for ref, count in created.items() if count > 1}
    total = sum(len(places) for places in held.values())
    return Audit(incidents, total, behind, duplicated)

"""Simulated SOC analysts for the demo: they close alerts and comment in the central queue
(`Analysts`) or in TheHive (`HiveAnalysts`), and the demo checks that each action reached
the Sentinel incident."""

from __future__ import annotations

import dataclasses
import html
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentinel_bridge.core.model import alert_id_for

from .. import Emulator

_COMMENTS = [
    "Checked the sign-in logs: the user confirmed the travel. 👍",
    "Escalating to tier 2 — host isolated <b>pending</b> forensics.",
    "Benign: scheduled vulnerability scan from the red team's range.",
]


@dataclass(frozen=True)
class Expectation:
    """An analyst action and how to see it on the Sentinel incident."""

    workspace: str
    incident_id: str
    kind: str  # "close" or "comment"
    text: str = ""
    classification: str = ""  # for "close": the one Sentinel must show ("": any)

    def met(self, emulator: Emulator) -> bool:
        if self.kind == "close":
            props = emulator.sentinel.get(self.incident_id)["properties"]
            shown = props.get("classification")
            wanted = self.classification or shown
            return bool(props["status"] == "Closed" and shown and shown == wanted)
        return any(
            html.unescape(str(comment["properties"]["message"])) == self.text
            for comment in emulator.sentinel.comments(self.incident_id)
        )


class AnalystTeam(Protocol):
    """What the demo asks of its simulated analysts, whichever queue they work in."""

    touched: set[str]

    def act(self) -> None: ...

    def mirrored(self, workspace_name: str | None = None) -> tuple[int, int]: ...


def _mirrored(
    emulator: Emulator, actions: list[Expectation], workspace_name: str | None
) -> tuple[int, int]:
    mine = [a for a in actions if workspace_name in (None, a.workspace)]
    return sum(1 for action in mine if action.met(emulator)), len(mine)


@dataclass
class Analysts:
    emulator: Emulator
    workspaces: list[Any]
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    actions: list[Expectation] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # incident ids analysts acted on

    def act(self) -> None:
        """One analyst action on an alert that is already in the queue."""
        workspace = self.rng.choice(self.workspaces)
        delivered = [
            incident
            for incident in self.emulator.sentinel.incidents(workspace)
            if alert_id_for(incident["id"]) in self.emulator.queue.alerts
            and incident["id"] not in self.touched
        ]
        if not delivered:
            return
        incident = self.rng.choice(delivered)
        self.touched.add(incident["id"])
        alert_id = alert_id_for(incident["id"])
        if self.rng.random() < 0.5:
            self.emulator.queue.add_status_change(
                alert_id, "closed", classification="false_positive",
                classification_reason="incorrect_alert_logic",
                classification_comment="Closed from the central queue",
            )  # fmt: skip
            self.actions.append(Expectation(workspace.workspace_name, incident["id"], "close"))
            return
        text = self.rng.choice(_COMMENTS)
        self.emulator.queue.add_comment_change(alert_id, text)
        self.actions.append(Expectation(workspace.workspace_name, incident["id"], "comment", text))

    def mirrored(self, workspace_name: str | None = None) -> tuple[int, int]:
        """(actions that reached Sentinel, actions taken), for one workspace or all."""
        return _mirrored(self.emulator, self.actions, workspace_name)


HIVE_ANALYSTS = ("alice", "bob")
CASE_SUMMARY = "Confirmed compromise: account reset, host reimaged."


def analyst_logins(organisation: str) -> list[str]:
    """The TheHive users of one organisation who act in the demo."""
    return [f"{name}@{organisation}.example" for name in HIVE_ANALYSTS]


@dataclass
class HiveAnalysts:
    """Analysts working in TheHive, each in their own organisation (`organisations`:
    workspace name -> the organisation of its tenant)."""

    emulator: Emulator
    workspaces: list[Any]
    organisations: Mapping[str, str]
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    actions: list[Expectation] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # incident ids analysts acted on

    def act(self) -> None:
        """One analyst action on an alert that is already in TheHive: close it as a false
        positive, comment on it, or make a case of it and then close the case as a true
        positive or comment on the case."""
        workspace = self.rng.choice(self.workspaces)
        organisation = self.organisations[workspace.workspace_name]
        hive = self.emulator.thehive
        in_hive = {
            str(alert["sourceRef"]): str(alert["_id"]) for alert in hive.alerts(organisation)
        }
        delivered = [
            incident
            for incident in self.emulator.sentinel.incidents(workspace)
            if alert_id_for(incident["id"]) in in_hive and incident["id"] not in self.touched
        ]
        if not delivered:
            return
        incident = self.rng.choice(delivered)
        self.touched.add(incident["id"])
        alert = in_hive[alert_id_for(incident["id"])]
        login = self.rng.choice(analyst_logins(organisation))
        expect = Expectation(workspace.workspace_name, incident["id"], "close")
        self.actions.append(self._work_on(alert, login, expect))

    def _work_on(self, alert: str, login: str, expect: Expectation) -> Expectation:
        """One of the four actions on TheHive alert `alert`; what Sentinel should show."""
        hive, action = self.emulator.thehive, self.rng.randrange(4)
        if action == 0:
            hive.analyst_update_alert(alert, login, status="FalsePositive")
            return dataclasses.replace(expect, classification="FalsePositive")
        text = self.rng.choice(_COMMENTS)
        if action == 1:
            hive.analyst_comment("alert", alert, login, text)
            return dataclasses.replace(expect, kind="comment", text=text)
        case = str(hive.analyst_create_case(alert, login)["_id"])
        if action == 2:
            hive.analyst_close_case(
                case, login, "TruePositive", impact_status="WithImpact", summary=CASE_SUMMARY
            )
            return dataclasses.replace(expect, classification="TruePositive")
        hive.analyst_comment("case", case, login, text)
        return dataclasses.replace(expect, kind="comment", text=text)

    def mirrored(self, workspace_name: str | None = None) -> tuple[int, int]:
        """(actions that reached Sentinel, actions taken), for one workspace or all."""
        return _mirrored(self.emulator, self.actions, workspace_name)

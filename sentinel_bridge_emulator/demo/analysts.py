"""Simulated SOC analysts for the demo: they close alerts and comment in the central queue,
and the demo checks that each action reached the Sentinel incident."""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from typing import Any

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

    def met(self, emulator: Emulator) -> bool:
        if self.kind == "close":
            props = emulator.sentinel.get(self.incident_id)["properties"]
            return bool(props["status"] == "Closed" and props.get("classification"))
        return any(
            html.unescape(str(comment["properties"]["message"])) == self.text
            for comment in emulator.sentinel.comments(self.incident_id)
        )


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
        mine = [a for a in self.actions if workspace_name in (None, a.workspace)]
        return sum(1 for action in mine if action.met(self.emulator)), len(mine)

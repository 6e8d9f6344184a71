"""The demo's live terminal view: one row per tenant, redrawn in place on a terminal."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from sentinel_bridge.cli.status import StatusRow
from sentinel_bridge.core.model import alert_id_for

_CLEAR = "\x1b[H\x1b[J"
_HEADER = ("tenant", "incidents", "delivered", "mirrored", "lag", "last error")


@dataclass(frozen=True)
class TenantLine:
    tenant: str
    incidents: int
    delivered: int
    mirrored: tuple[int, int]
    lag_seconds: float | None
    last_error: str | None


def tenant_line(emulator: Any, workspace: Any, label: str, analysts: Any,
                status: StatusRow | None) -> TenantLine:  # fmt: skip
    incidents = emulator.sentinel.incidents(workspace)
    alerts = emulator.queue.alerts
    delivered = sum(1 for incident in incidents if alert_id_for(incident["id"]) in alerts)
    return TenantLine(
        tenant=label,
        incidents=len(incidents),
        delivered=delivered,
        mirrored=analysts.mirrored(workspace.workspace_name),
        lag_seconds=status.lag_seconds if status else None,
        last_error=status.last_error if status else None,
    )


def progress(elapsed: float, duration: float, width: int = 30) -> str:
    """`[=====>      ]  12/30 s`, or a spinner-like elapsed time when there is no end."""
    if duration <= 0:
        return f"running {elapsed:5.0f} s (Ctrl-C to stop)"
    done = min(1.0, elapsed / duration)
    filled = int(done * width)
    bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
    return f"[{bar[:width]}] {min(elapsed, duration):4.0f}/{duration:.0f} s"


def render(lines: list[TenantLine], header: str) -> str:
    rows = [_HEADER] + [
        (
            line.tenant,
            str(line.incidents),
            str(line.delivered),
            f"{line.mirrored[0]}/{line.mirrored[1]}",
            "-" if line.lag_seconds is None else f"{line.lag_seconds:.0f} s",
            (line.last_error or "")[:50],
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    table = "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return f"{header}\n\n{table}\n"


class Screen:
    """Redraws in place on a terminal; elsewhere prints a snapshot every few seconds."""

    def __init__(self, every_seconds_when_piped: float = 5.0) -> None:
        self._tty = sys.stdout.isatty()
        self._every = every_seconds_when_piped
        self._last = 0.0

    def show(self, text: str) -> None:
        now = time.monotonic()
        if self._tty:
            sys.stdout.write(_CLEAR + text)
        elif now - self._last >= self._every:
            sys.stdout.write(text + "\n")
        else:
            return
        self._last = now
        sys.stdout.flush()

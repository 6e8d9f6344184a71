"""The demo's per-tenant view. On a terminal: a rich table redrawn in place under the intro
lines (colour only there); elsewhere (a pipe, a file): one plain progress line every few
seconds and the final table, without escape codes. Everything fits WIDTH columns."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sentinel_bridge.cli.status import StatusRow
from sentinel_bridge.core.model import alert_id_for

WIDTH = 100
# What the columns count; printed under the table, since "mirrored 0/1" alone says little.
LEGEND = (
    "incidents: in Sentinel | delivered: of those, alerts in the central queue",
    "mirrored: analyst actions (close, comment) applied to Sentinel / taken in the queue",
    "lag: how far the bridge's checkpoint trails now (- before its first tick)",
)
_ERROR_WIDTH = 40


@dataclass(frozen=True)
class TenantLine:
    tenant: str
    incidents: int
    delivered: int
    mirrored: tuple[int, int]
    lag_seconds: float | None
    last_error: str | None


def tenant_line(
    emulator: Any,
    workspace: Any,
    label: str,
    analysts: Any,
    status: StatusRow | None,
    organisation: str | None = None,
) -> TenantLine:
    """One tenant's row; `organisation`: its TheHive organisation, when TheHive is the queue
    (then "delivered" counts the alerts there), else None (the HTTP queue)."""
    incidents = emulator.sentinel.incidents(workspace)
    alerts: Container[str] = (
        emulator.queue.alerts
        if organisation is None
        else {alert["sourceRef"] for alert in emulator.thehive.alerts(organisation)}
    )
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


def _lag(line: TenantLine) -> str:
    return "-" if line.lag_seconds is None else f"{line.lag_seconds:.0f} s"


def table(lines: list[TenantLine], *, plain: bool) -> Table:
    """One row per tenant; a tenant that is behind or failing is highlighted (colour only
    reaches a terminal: rich drops styles elsewhere)."""
    grid = Table(box=box.ASCII2 if plain else box.SIMPLE_HEAD)
    grid.add_column("tenant", no_wrap=True, max_width=20, overflow="ellipsis")
    for name in ("incidents", "delivered", "mirrored", "lag"):
        grid.add_column(name, justify="right")
    grid.add_column("last error", max_width=_ERROR_WIDTH, overflow="ellipsis", no_wrap=True)
    for line in lines:
        behind = line.delivered < line.incidents or line.mirrored[0] < line.mirrored[1]
        style = "red" if line.last_error else "yellow" if behind else "green"
        cells = (
            line.tenant,
            str(line.incidents),
            str(line.delivered),
            f"{line.mirrored[0]}/{line.mirrored[1]}",
            _lag(line),
            line.last_error or "",
        )
        # Text, not str: rich would read an error's "[Errno 111]" as markup.
        grid.add_row(*map(Text, cells), style=None if plain else style)
    return grid


def frame(lines: list[TenantLine], header: str, *, plain: bool) -> RenderableType:
    """The header, the table and the legend."""
    legend_style = "" if plain else "dim"
    return Group(
        Text(header, style="" if plain else "bold"),
        table(lines, plain=plain),
        *(Text(line, style=legend_style) for line in LEGEND),
    )


def render(lines: list[TenantLine], header: str) -> str:
    """The frame as plain text, as a pipe or a file gets it."""
    out = io.StringIO()
    _plain_console(out).print(frame(lines, header, plain=True))
    return out.getvalue()


def elapsed_label(elapsed: float, duration: float) -> str:
    """`  12/30 s`, or `  12 s` when the demo runs until stopped."""
    end = f"/{duration:.0f}" if duration > 0 else ""
    return f"{min(elapsed, duration) if duration > 0 else elapsed:4.0f}{end} s"


def summary_line(lines: list[TenantLine], header: str) -> str:
    """One plain line for all tenants: what a pipe gets every few seconds."""
    done = sum(line.mirrored[0] for line in lines)
    taken = sum(line.mirrored[1] for line in lines)
    lags = [line.lag_seconds for line in lines if line.lag_seconds is not None]
    failing = sum(1 for line in lines if line.last_error)
    return (
        f"{header}  incidents {sum(line.incidents for line in lines)}, "
        f"delivered {sum(line.delivered for line in lines)}, mirrored {done}/{taken}, "
        f"max lag {f'{max(lags):.0f} s' if lags else '-'}, failing {failing}"
    )


def _title(progress_text: str) -> str:
    return f"sentinel-bridge demo  {progress_text}"


def _plain_console(file: Any) -> Console:
    # No terminal, no colour, no markup guesses: exactly the characters shown.
    return Console(file=file, width=WIDTH, color_system=None, force_terminal=False, highlight=False)


class Screen:
    """Redraws in place on a terminal; elsewhere prints a progress line every few seconds
    and, at the end, the final table."""

    def __init__(self, every_seconds_when_piped: float = 5.0, console: Console | None = None):
        self._tty = sys.stdout.isatty() if console is None else console.is_terminal
        self._console = console or (
            Console(highlight=False) if self._tty else _plain_console(sys.stdout)
        )
        self._console.width = min(self._console.width, WIDTH)
        self._every = every_seconds_when_piped
        self._last: float | None = None
        self._live: Live | None = None

    def show(self, lines: list[TenantLine], elapsed: float, duration: float) -> None:
        if self._tty:
            self._draw(frame(lines, _title(progress(elapsed, duration)), plain=False))
            return
        now = time.monotonic()
        if self._last is None or now - self._last >= self._every:
            self._last = now
            self._console.print(Text(summary_line(lines, elapsed_label(elapsed, duration))))
            self._console.file.flush()

    def close(self, lines: list[TenantLine], elapsed: float, duration: float) -> None:
        """Leave the final frame on screen (a terminal keeps the last one drawn)."""
        header = _title(progress(elapsed, duration))
        if self._tty:
            self._draw(frame(lines, header, plain=False), refresh=False)
            self.stop()  # draws the last frame once more, and leaves it
            return
        self._console.print(frame(lines, header, plain=True))
        self._console.file.flush()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _draw(self, renderable: RenderableType, *, refresh: bool = True) -> None:
        if self._live is None:
            # Not transient: the last frame stays, and lines printed meanwhile (the intro,
            # "stopping ...") stay above it instead of being wiped.
            self._live = Live(renderable, console=self._console, auto_refresh=False)
            self._live.start()
        self._live.update(renderable, refresh=refresh)

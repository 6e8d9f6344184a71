"""sd_notify(3) without libsystemd: one datagram per state change to $NOTIFY_SOCKET.

Used for Type=notify units: READY=1 once the loops run, WATCHDOG=1 from the daemon's main
loop, STATUS=<one line> for `systemctl status`, RELOADING=1 (with MONOTONIC_USEC) when a
SIGHUP reload starts and READY=1 again when it is done, STOPPING=1 on shutdown. Outside
systemd ($NOTIFY_SOCKET unset) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends `KEY=value` lines to the service manager; never raises."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)
        self._warned = False

    def notify(self, **fields: str) -> bool:
        """Send one message (e.g. notify(READY="1", STATUS="...")); True if it was sent."""
        if self._address is None or not fields:
            return False
        message = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:  # once: a broken socket would otherwise flood the log
                log.warning("systemd notify failed", error=str(exc))
                self._warned = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(READY="1", STATUS=status)

    def watchdog(self, status: str) -> bool:
        return self.notify(WATCHDOG="1", STATUS=status)

    def reloading(self) -> bool:
        """The reload starts: systemd shows the unit as reloading until the next READY=1."""
        # systemd wants the moment on its own clock: with Type=notify-reload (v253+) it tells
        # from it whether this reload began after the SIGHUP it sent, and ignores a
        # RELOADING=1 that comes without it.
        return self.notify(
            RELOADING="1", MONOTONIC_USEC=str(monotonic_usec()), STATUS="reloading configuration"
        )

    def stopping(self) -> bool:
        return self.notify(STOPPING="1", STATUS="stopping")


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):  # abstract namespace: leading NUL instead of '@'
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other families are not used for local daemons


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WatchdogSec in seconds, if the watchdog is armed for this very process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock and unit systemd reads MONOTONIC_USEC in."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _one_line(value: str) -> str:
    return " ".join(value.split())

"""Live reload of the configuration (SIGHUP).

Tenants are applied live. Other sections (credentials, store, queue, sync timing, logging,
the event loop) are wired into long-lived clients at start; a change to them is reported as
needing a restart instead of being half-applied.

systemd hears of each reload: RELOADING=1 before the file is read, READY=1 once the new tenants
run or the file was rejected, whatever happened in between, so the unit never stays
"reloading".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import structlog

from ..config import Settings
from ..core.errors import ConfigError
from .systemd_notify import Notifier

log = structlog.get_logger(__name__)

_RESTART_SECTIONS = ("azure", "store", "queue", "sync", "observability", "runtime")

_RELOADED = "configuration reloaded"
_REJECTED = "configuration reload rejected; the running configuration stays"


def reload_notified(
    current: Settings,
    load: Callable[[], Settings],
    apply: Callable[[Settings], None],
    notifier: Notifier,
) -> bool:
    """Reload and `apply` the new settings between RELOADING=1 and READY=1; True if applied."""
    notifier.reloading()
    applied = False
    try:
        new = reload_settings(current, load)
        if new is not None:
            apply(new)
            applied = True
    finally:
        # Also when `apply` raises: otherwise systemd would show the unit "reloading" (and
        # hold queued jobs back) until its own timeout.
        notifier.ready(_RELOADED if applied else _REJECTED)
    return applied


def reload_settings(current: Settings, load: Callable[[], Settings]) -> Settings | None:
    """The running settings with the new tenants, or None (logged) when the file is invalid."""
    try:
        new = load()
    except ConfigError as exc:
        _reject([f"{exc.source}: {key}: {reason}" for key, reason in exc.problems])
        return None
    except Exception as exc:
        # load() reports every bad file as ConfigError; anything else (a permission race, a
        # bug) must not escape the SIGHUP handler and take the running daemon down with it.
        reason = f"cannot load: {type(exc).__name__}: {exc}"
        _reject([f"{_source_of(load)}: <file>: {reason}"])
        return None
    restart = [name for name in _RESTART_SECTIONS if getattr(new, name) != getattr(current, name)]
    if restart:
        log.warning(
            "configuration reload: these sections take effect only after a restart",
            sections=restart,
        )
    log.info(
        _RELOADED,
        tenants=len(new.tenants),
        enabled=len(new.enabled_tenants),
    )
    # Only the tenants change: the next reload still sees (and reports) pending restarts.
    return current.model_copy(update={"tenants": new.tenants})


def _reject(problems: list[str]) -> None:
    log.error(_REJECTED, problems=problems)


def _source_of(load: Callable[[], Settings]) -> str:
    """The config file `load` reads, when it is `partial(load_settings, path)` as in the CLI."""
    if isinstance(load, partial) and load.args:
        return str(load.args[0])
    return "<config>"

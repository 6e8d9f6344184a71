"""Live reload of the configuration (SIGHUP).

Tenants are applied live. Other sections (credentials, store, queue, sync timing, logging)
are wired into long-lived clients at start; a change to them is reported as needing a restart
instead of being half-applied.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from .config import Settings
from .errors import ConfigError

log = structlog.get_logger(__name__)

_RESTART_SECTIONS = ("azure", "store", "queue", "sync", "observability")


def reload_settings(current: Settings, load: Callable[[], Settings]) -> Settings | None:
    """The running settings with the new tenants, or None (logged) when the file is invalid."""
    try:
        new = load()
    except ConfigError as exc:
        log.error(
            "configuration reload rejected; the running configuration stays",
            problems=[f"{exc.source}: {key}: {reason}" for key, reason in exc.problems],
        )
        return None
    restart = [name for name in _RESTART_SECTIONS if getattr(new, name) != getattr(current, name)]
    if restart:
        log.warning(
            "configuration reload: these sections take effect only after a restart",
            sections=restart,
        )
    log.info(
        "configuration reloaded",
        tenants=len(new.tenants),
        enabled=len(new.enabled_tenants),
    )
    # Only the tenants change: the next reload still sees (and reports) pending restarts.
    return current.model_copy(update={"tenants": new.tenants})

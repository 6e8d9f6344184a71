"""The event loop the bridge runs on, and the garbage collector's settings.

uvloop (the optional `uvloop` extra) runs the same code with a cheaper loop: fewer CPU
microseconds per socket event and timer, which is much of what a quiet bridge does. `[runtime]
event_loop` chooses: "auto" takes uvloop when it is installed, "asyncio" is the off switch,
"uvloop" insists (the configuration refuses it when uvloop is missing).

The bridge keeps a large, long-lived heap after start-up (modules, compiled SQL, settings,
TLS contexts) and makes thousands of short-lived dicts per page of incidents. CPython's
default thresholds run a young collection every 700 allocations and, every hundred of those,
walk the whole heap again. Freezing what start-up built moves it out of every later
collection, and a larger first threshold makes collections rarer (cycles are still
collected, only less often). Measured (BENCHMARKS.md), both gains are within run-to-run noise
on the benchmarks' workloads; they are kept, switchable, for heaps that grow with the number
of tenants.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from typing import Any, Literal

import structlog

log = structlog.get_logger(__name__)

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]

# Allocations (minus deallocations) between two young collections: CPython's default is 700.
GC_THRESHOLDS = (50_000, 20, 20)


def uvloop_installed() -> bool:
    """True when `import uvloop` would work (it is not imported here)."""
    return importlib.util.find_spec("uvloop") is not None


def uses_uvloop(choice: EventLoopChoice) -> bool:
    """Whether `choice` runs on uvloop on this machine."""
    return choice == "uvloop" or (choice == "auto" and uvloop_installed())


def backend_options(choice: EventLoopChoice) -> dict[str, Any]:
    """`anyio.run(..., backend_options=...)` for the configured loop."""
    return {"use_uvloop": uses_uvloop(choice)}


def running_loop_name() -> str:
    """ "uvloop" or "asyncio": the loop this coroutine runs on, for the start-up log line."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def tune_gc(enabled: bool) -> None:
    """Freeze what is alive now and raise the collection thresholds; nothing when disabled.
    Called once start-up is done, so that what it built is what is frozen."""
    if not enabled:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.debug("gc tuned", frozen=gc.get_freeze_count(), thresholds=GC_THRESHOLDS)

"""A bounded exit for the daemon once its work is done.

SQLAlchemy's aiosqlite adapter closes a connection whose task was cancelled mid-query through
a shielded "graceful close" that, with aiosqlite >= 0.22, can wait forever on a worker thread
that already stopped; asyncio's final task cleanup then never returns. By the time the daemon
returns, every store transaction has committed (they are shielded) and the engine is disposed,
so nothing can be lost by leaving after a grace period instead of hanging under systemd.
"""

from __future__ import annotations

import os
import sys
import threading

TEARDOWN_SECONDS = 5.0


def exit_if_teardown_hangs(code: int, seconds: float = TEARDOWN_SECONDS) -> threading.Timer:
    """Arm a timer that ends the process with `code` if interpreter teardown stalls."""

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True  # a clean teardown ends the process without waiting for it
    timer.start()
    return timer

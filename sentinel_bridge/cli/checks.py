"""`check-config --online`: every part the bridge talks to, reached once, in one table.

Rows: each enabled tenant (token and one page of incidents), the queue (an authenticated read
of its change feed) and the store (connection and schema revision); see runtime/probes.py.
The table is the whole output: log lines of the probes are held back while they run, and
their warnings and errors appear in the detail of the row they concern. No cell ever shows a
configured secret, whatever an error message quotes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..config import Settings
from ..ops.log_capture import CapturedLine, CapturedLogs, captured_logs
from ..runtime.probes import ProbeResult, probe_all
from ..runtime.startup import StoreTarget
from .table import render

OK, FAILED = "ok", "FAILED"
HEADER = ("kind", "name", "result", "detail")
# Log lines shown per row; a probe that retried may have said the same thing many times.
_MAX_NOTES = 3
_NOTE_CHARS = 200


async def check_online(settings: Settings) -> int:
    """Print the table; 0 only if every part answered as the daemon needs."""
    with captured_logs() as logs:
        results = await probe_all(settings)
    rows = [_row(result, logs.of(result.scope)) for result in results]
    rows += _unscoped_rows(logs)
    print(render_table(rows, secrets_of(settings)))
    return 0 if all(result.ok for result in results) else 1


def _row(result: ProbeResult, lines: Sequence[CapturedLine]) -> tuple[str, str, str, str]:
    detail = "; ".join([result.detail, *_notes(lines)])
    return (result.kind, result.name, OK if result.ok else FAILED, detail)


def _notes(lines: Sequence[CapturedLine]) -> list[str]:
    unique = list(dict.fromkeys(f"{line.level}: {line.text}"[:_NOTE_CHARS] for line in lines))
    if len(unique) > _MAX_NOTES:
        return [*unique[:_MAX_NOTES], f"(+{len(unique) - _MAX_NOTES} more log lines)"]
    return unique


def _unscoped_rows(logs: CapturedLogs) -> list[tuple[str, str, str, str]]:
    """Lines no probe claimed (none are expected): shown, but they fail nothing."""
    return [("log", "-", line.level, line.text) for line in logs.of(None)]


def render_table(rows: Iterable[Sequence[str]], secrets: Sequence[str] = ()) -> str:
    """The rows under HEADER, one line each, with every secret blanked out."""
    cells = [HEADER, *(tuple(_cell(cell, secrets) for cell in row) for row in rows)]
    return render(cells)


def _cell(text: str, secrets: Sequence[str]) -> str:
    # One line per row, whatever a server put in its message.
    flat = " ".join(text.split())
    for secret in secrets:
        flat = flat.replace(secret, "***")
    return flat


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold; an error could quote one (a server echoing the
    token it refused, a driver the URL it was given)."""
    values = [settings.azure.client_secret, settings.queue.token]
    found = [value.get_secret_value() for value in values if value is not None]
    found.append(StoreTarget.of(settings.store.url).password or "")
    return [secret for secret in found if secret]

"""`sentinel-bridge changes list [--parked]` and `sentinel-bridge changes retry ID|--all`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import anyio

from ..config import Settings
from ..core.model import JournalEntry, Outcome
from .table import render


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:  # fmt: skip
    changes = commands.add_parser(
        "changes", parents=[common], help="analyst changes from the queue: list them, retry parked"
    )
    actions = changes.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", parents=[common], help="recent changes, newest first, and what became of them"
    )
    listing.add_argument(
        "--parked",
        action="store_true",
        help="only the parked changes (set aside with their reason)",
    )
    listing.add_argument(
        "--limit", type=_positive, default=100, metavar="N", help="at most N rows (default 100)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    retry = actions.add_parser("retry", parents=[common], help="apply parked changes again")
    retry.add_argument(
        "change_ids", nargs="*", default=[], metavar="ID", help="the change ids `list` shows"
    )
    retry.add_argument("--all", action="store_true", help="every parked change")


def _positive(text: str) -> int:
    """argparse type: a whole number above 0 (argparse makes the error a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text!r}")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The `changes` command; 2 for a retry without ids and without --all (or with both)."""
    if args.action == "list":
        return anyio.run(list_changes, settings, args.parked, args.limit, args.json)
    if bool(args.change_ids) == bool(args.all):
        print("changes retry: give change ids or --all (not both)", file=sys.stderr)
        return 2
    return anyio.run(retry_changes, settings, args.change_ids, args.all)


async def list_changes(settings: Settings, parked: bool, limit: int, as_json: bool) -> int:
    # The daemon's modules load only when a command needs them.
    from ..runtime.reverse import build_reverse
    from ..runtime.wiring import open_adapters
    from ..runtime.workspaces import workspaces_of

    async with open_adapters(settings, exclusive=False) as adapters:
        reverse = build_reverse(settings, adapters, workspaces_of(settings))
        entries = await reverse.store.journal(None, parked_only=parked, limit=limit)
    _print(entries, as_json)
    return 0


async def retry_changes(settings: Settings, change_ids: Sequence[str], every: bool) -> int:
    """Apply the parked changes again; 1 when any of them is still not applied."""
    from ..runtime.reverse import build_reverse
    from ..runtime.wiring import open_adapters
    from ..runtime.workspaces import workspaces_of

    async with open_adapters(settings, exclusive=False) as adapters:
        reverse = build_reverse(settings, adapters, workspaces_of(settings))
        entries = await reverse.retry(None if every else list(change_ids))
    missing = set(change_ids) - {entry.change_id for entry in entries}
    for change_id in sorted(missing):
        print(f"{change_id}: not a parked change")
    _print(entries, as_json=False)
    still = [entry for entry in entries if entry.outcome in (Outcome.PARKED, Outcome.PENDING)]
    return 1 if still or missing else 0


def _print(entries: Sequence[JournalEntry], as_json: bool) -> None:
    if as_json:
        for entry in entries:
            print(json.dumps(_as_row(entry), ensure_ascii=False))
        return
    if not entries:
        print("no changes")
        return
    header = ["CHANGE", "OUTCOME", "KIND", "ALERT", "REASON"]
    cells = [
        [entry.change_id, entry.outcome.value, entry.kind or "-", entry.alert_id or "-",
         entry.reason or ""]
        for entry in entries
    ]  # fmt: skip
    print(render([header, *cells]))


def _as_row(entry: JournalEntry) -> dict[str, object]:
    return {
        "change_id": entry.change_id,
        "alert_id": entry.alert_id,
        "kind": entry.kind,
        "outcome": entry.outcome.value,
        "attempts": entry.attempts,
        "updated_at": entry.updated_at.isoformat() if entry.updated_at else None,
        "reason": entry.reason,
    }

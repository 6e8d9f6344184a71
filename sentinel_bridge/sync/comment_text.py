"""Comment text between the queue and Sentinel: splitting, joining and deterministic ids. Pure.

A comment longer than Sentinel's limit is split into parts that each start with a marker
`[part i/n] `; joining the parts (markers removed) gives back the original text exactly, for
any unicode. Every part has its own id derived from the queue comment's id, so a retry writes
the same parts again instead of adding new ones.
"""

from __future__ import annotations

import re
import uuid

# Fixed: changing them would re-create every comment the bridge ever mirrored.
SENTINEL_COMMENT_NAMESPACE = uuid.UUID("3b1f8c2e-7d4a-4e59-a6b0-5c9d2e8f1a37")
QUEUE_COMMENT_NAMESPACE = uuid.UUID("9e6a4d10-2c3b-4f8e-b7a1-0d5c6e7f8a92")

_MARKER = re.compile(r"\A\[part (\d+)/(\d+)\] ")
# A part prefers to end at a line break or a space found in its last tenth, for readability.
_SOFT_BREAK_SHARE = 10


def marker(index: int, total: int) -> str:
    return f"[part {index}/{total}] "


def split_comment(text: str, max_chars: int) -> list[str]:
    """`text` as one message, or as numbered parts of at most `max_chars` characters each.

    Never loses text: joining the parts gives `text` back for every length and limit, or a
    ValueError says why it cannot be split (a limit too small for even one marker).
    """
    if len(text) <= max_chars:
        return [text]
    total = hard_part_count(len(text), max_chars)
    # Parts prefer to end at a soft break; soft cuts make parts shorter, so they may need one
    # more part than hard cuts do (or, rarely, not fit at all: then cut hard).
    for count in (total, total + 1):
        parts = _split(text, max_chars, count, soft=True)
        if parts:
            return parts
    parts = _split(text, max_chars, total, soft=False)
    if not parts:  # cannot happen for a count from hard_part_count; never return less
        raise ValueError(f"cannot split {len(text)} characters into parts of {max_chars}")
    return parts


def _split(text: str, max_chars: int, total: int, *, soft: bool) -> list[str]:
    """Exactly `total` non-empty parts that fit and join to `text`, or []."""
    parts: list[str] = []
    rest = text
    for index in range(1, total + 1):
        room = max_chars - len(marker(index, total))
        last = index == total
        cut = len(rest) if last else (_cut(rest, room) if soft else room)
        if cut > room or cut == 0:  # too long, or the text ran out before the last part
            return []
        parts.append(marker(index, total) + rest[:cut])
        rest = rest[cut:]
    return parts


def join_parts(parts: list[str]) -> str:
    """The original text of parts made by `split_comment` (a single message is itself)."""
    if len(parts) == 1:
        return parts[0]
    return "".join(_MARKER.sub("", part, count=1) for part in parts)


def capacity(total: int, max_chars: int) -> int:
    """Characters of text that `total` parts hold when each is filled to the limit."""
    return sum(max_chars - len(marker(index, total)) for index in range(1, total + 1))


def hard_part_count(length: int, max_chars: int) -> int:
    """The fewest parts (at least 2) that hold `length` characters with hard cuts.

    Being the fewest, the first `total - 1` full parts hold less than `length`, so the last
    part is never empty; and each part fits because its room counts its own marker.
    """
    total = 2
    while capacity(total, max_chars) < length:
        # Skip ahead by what the shortfall surely needs: no count skipped could hold it, so
        # the loop still stops at the fewest.
        total += max(1, (length - capacity(total, max_chars)) // max_chars)
        if max_chars - len(marker(total, total)) < 1:
            raise ValueError(f"comment limit {max_chars} is too small to split a comment")
    return total


def _cut(rest: str, room: int) -> int:
    """Where this part ends: a soft break near the end of its room, else the room itself."""
    window_start = room - room // _SOFT_BREAK_SHARE
    for separator in ("\n", " "):
        found = rest.rfind(separator, window_start, room)
        if found >= 0:
            return found + 1
    return room


def sentinel_comment_ids(queue_comment_id: str, parts: int) -> list[str]:
    """The Sentinel comment id of each part of a queue comment (UUIDv5, stable)."""
    if parts == 1:
        return [str(uuid.uuid5(SENTINEL_COMMENT_NAMESPACE, queue_comment_id))]
    return [
        str(uuid.uuid5(SENTINEL_COMMENT_NAMESPACE, f"{queue_comment_id}#{index}/{parts}"))
        for index in range(1, parts + 1)
    ]


def queue_comment_id(source_comment_ref: str) -> str:
    """The queue comment id of a comment written at the source (UUIDv5 of its lower-cased
    ref: its ARM id for Sentinel)."""
    return str(uuid.uuid5(QUEUE_COMMENT_NAMESPACE, source_comment_ref.lower()))

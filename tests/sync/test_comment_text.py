"""Comment splitting, joining and ids: any text survives the trip through Sentinel's limit."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel_bridge.sync.comment_text import (
    join_parts,
    queue_comment_id,
    sentinel_comment_ids,
    shown_text,
    split_comment,
)


@settings(max_examples=300)
@given(st.text(max_size=3000), st.integers(min_value=100, max_value=600))
def test_split_then_join_gives_the_original(text: str, limit: int) -> None:
    """For any unicode text and limit, every part fits and the parts join to the original."""
    parts = split_comment(text, limit)
    assert all(len(part) <= limit for part in parts)
    assert join_parts(parts) == text


@given(st.text(min_size=1, max_size=200))
def test_escaped_storage_shows_the_written_text(text: str) -> None:
    """Sentinel escapes HTML on storage; unescaping gives back what the analyst wrote."""
    assert shown_text(html.escape(text, quote=False)) == text


def test_seventy_thousand_chars_make_three_numbered_parts() -> None:
    """70,000 characters at the 30,000 limit are three parts marked 1/3, 2/3, 3/3."""
    parts = split_comment("x" * 70_000, 30_000)
    assert [part[:12] for part in parts] == ["[part 1/3] x", "[part 2/3] x", "[part 3/3] x"]


def test_a_short_comment_is_sent_as_is() -> None:
    """Text within the limit is one message, unchanged, HTML and emoji included."""
    assert split_comment("<b>hi</b> 🛡️", 30_000) == ["<b>hi</b> 🛡️"]


def test_ids_are_deterministic_and_distinct_per_part() -> None:
    """The same queue comment always gives the same part ids; parts never share one."""
    assert sentinel_comment_ids("c-1", 3) == sentinel_comment_ids("c-1", 3)
    assert len(set(sentinel_comment_ids("c-1", 3))) == 3
    assert sentinel_comment_ids("c-1", 1) != sentinel_comment_ids("c-2", 1)
    assert queue_comment_id("/X/comments/A") == queue_comment_id("/x/comments/a")

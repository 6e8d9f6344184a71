"""Comment splitting, joining and ids: any text survives the trip through Sentinel's limit."""

from __future__ import annotations

import html

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel_bridge.adapters.sentinel.comments import shown_text
from sentinel_bridge.sync.comment_text import (
    join_parts,
    marker,
    queue_comment_id,
    sentinel_comment_ids,
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


LIMITS = st.sampled_from([100, 101, 137, 1000, 3000, 30_000])
# Texts without soft breaks (no spaces, no newlines), where every cut is a hard one, and
# texts made mostly of breaks, where soft cuts make parts shorter.
NO_BREAKS = st.text(alphabet=st.characters(blacklist_characters=" \n"), max_size=20)
DENSE_BREAKS = st.text(alphabet=st.sampled_from("ab \n🛡"), max_size=20)


def assert_lossless(text: str, limit: int) -> list[str]:
    parts = split_comment(text, limit)
    assert parts, "no parts: the comment would be lost"
    assert all(len(part) <= limit for part in parts)
    assert len(parts) == 1 or all(len(part) > len(marker(1, len(parts))) for part in parts)
    assert join_parts(parts) == text
    if len(parts) > 1:
        total = len(parts)
        assert [part.split("] ", 1)[0] + "]" for part in parts] == [
            f"[part {i}/{total}]" for i in range(1, total + 1)
        ]
    return parts


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=400_000), LIMITS, NO_BREAKS)
def test_long_text_without_breaks_is_never_lost(length: int, limit: int, unit: str) -> None:
    """Any length of text without spaces or newlines, at any limit, splits and joins exactly."""
    text = ((unit or "x") * (length // max(1, len(unit or "x")) + 1))[:length]
    assert_lossless(text, limit)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=100_000), LIMITS, DENSE_BREAKS)
def test_text_dense_with_breaks_is_never_lost(length: int, limit: int, unit: str) -> None:
    """Soft breaks everywhere shorten parts; the split still holds all the text, numbered."""
    text = ((unit or "a ") * (length // max(1, len(unit or "a ")) + 1))[:length]
    assert_lossless(text, limit)


def test_every_length_around_the_part_boundaries_survives() -> None:
    """Each length from 1 to 40 parts' worth at a limit of 100 splits without losing text."""
    for length in range(1, 4_001):
        assert_lossless("x" * length, 100)


def test_lengths_that_used_to_lose_the_comment() -> None:
    """299,879 characters at 30,000 and 871 at 100 (once split into nothing) now split."""
    assert len(assert_lossless("x" * 299_879, 30_000)) == 10
    assert len(assert_lossless("x" * 871, 100)) == 10


def test_parts_use_the_fewest_parts_for_hard_cuts() -> None:
    """30,000 + 1 characters at 30,000 are 2 parts; 2 full parts' worth plus 1 are 3."""
    assert len(split_comment("x" * 30_001, 30_000)) == 2
    room = 30_000 - len("[part 1/2] ")
    assert len(split_comment("x" * (2 * room), 30_000)) == 2
    assert len(split_comment("x" * (2 * room + 1), 30_000)) == 3


def test_a_part_ends_at_a_line_break_near_its_end() -> None:
    """A line break within the last tenth of a part's room is where that part ends."""
    room = 100 - len("[part 1/2] ")
    text = "a" * (room - 5) + "\n" + "b" * 60
    parts = split_comment(text, 100)
    assert parts[0] == "[part 1/2] " + "a" * (room - 5) + "\n"
    assert parts[1] == "[part 2/2] " + "b" * 60


def test_a_limit_too_small_for_a_marker_is_an_error_not_a_loss() -> None:
    """A limit that cannot hold a marker raises instead of returning fewer characters."""
    with pytest.raises(ValueError, match="too small"):
        split_comment("x" * 100, 10)


def test_comment_ids_are_golden() -> None:
    """Part ids and queue comment ids are fixed forever: changing them duplicates comments."""
    assert sentinel_comment_ids("c-1", 1) == ["1cef8ed7-76a3-576b-bb6d-690cceed99d1"]
    assert sentinel_comment_ids("c-1", 2) == [
        "7af9b097-2fde-533c-9243-1f5548f643c7",
        "8caeb106-b2ac-588d-a0cf-1d7cc2178bfb",
    ]
    assert queue_comment_id("/Sub/Incidents/I/Comments/A") == "31b93e82-d5e7-53bc-90b8-486b3dd963f6"


def test_text_of_exactly_the_limit_is_one_message() -> None:
    """A comment of exactly `max_chars` characters is sent whole, unmarked."""
    assert split_comment("x" * 100, 100) == ["x" * 100]


def test_soft_breaks_that_need_one_more_part_get_it() -> None:
    """Two full parts' worth with a space near the first cut: three parts, the first ending
    at the space, rather than hard cuts through the word."""
    room = 100 - len("[part 1/2] ")
    text = "a" * 85 + " " + "b" * (2 * room - 86)
    parts = split_comment(text, 100)
    assert len(parts) == 3
    assert parts[0] == "[part 1/3] " + "a" * 85 + " "
    assert join_parts(parts) == text


def test_a_space_is_a_soft_break_too() -> None:
    """Without a line break, a space in the last tenth of the room ends the part."""
    room = 100 - len("[part 1/2] ")
    text = "a" * (room - 3) + " " + "b" * 50
    assert split_comment(text, 100)[0] == "[part 1/2] " + "a" * (room - 3) + " "


def test_the_last_break_in_the_window_is_used() -> None:
    """Two spaces near the end of the room: the part ends after the later one."""
    room = 100 - len("[part 1/2] ")
    text = "a" * (room - 6) + " bb " + "c" * 60
    assert split_comment(text, 100)[0] == "[part 1/2] " + "a" * (room - 6) + " bb "


def test_breaks_far_from_the_end_or_beyond_the_room_are_ignored() -> None:
    """A space early in the part and one just past its room: the part is cut hard."""
    room = 100 - len("[part 1/2] ")
    text = "a" * 10 + " " + "b" * (room - 11) + " " + "c" * 60
    parts = split_comment(text, 100)
    assert parts[0] == "[part 1/2] " + text[:room]
    assert join_parts(parts) == text


def test_the_smallest_workable_limit_still_splits() -> None:
    """At 14 characters, parts 10 and up have room for one character beside their marker."""
    parts = split_comment("x" * 28, 14)
    assert len(parts) == 19 and join_parts(parts) == "x" * 28
    assert parts[-1] == "[part 19/19] x"


def test_a_break_past_the_room_does_not_hide_one_within_it() -> None:
    """With a space near the end of the room and another beyond it, the near one is used."""
    room = 100 - len("[part 1/2] ")
    text = "a" * (room - 4) + " " + "b" * 10 + " " + "c" * 50
    assert split_comment(text, 100)[0] == "[part 1/2] " + "a" * (room - 4) + " "

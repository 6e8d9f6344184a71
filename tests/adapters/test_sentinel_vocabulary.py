"""Sentinel's PascalCase words and the queue's snake case."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.sentinel.vocabulary import optional_snake, snake_case


@given(st.lists(st.sampled_from(["True", "Positive", "But", "Expected", "Ip", "A1"]), min_size=1))
def test_snake_case_of_pascal_words(words: list[str]) -> None:
    """Joined PascalCase words come back as the lower-cased words joined by underscores."""
    assert snake_case("".join(words)) == "_".join(w.lower() for w in words)


def test_spaces_and_hyphens_become_underscores() -> None:
    """`Needs Review` and `in-progress` become `needs_review` and `in_progress`."""
    assert snake_case("Needs Review") == "needs_review"
    assert snake_case(" in-progress ") == "in_progress"
    assert snake_case("Very  - Odd") == "very_odd"


def test_acronyms_split_before_the_next_word() -> None:
    """`HTTPError` is `http_error`, `IPAddress` is `ip_address`."""
    assert snake_case("HTTPError") == "http_error"
    assert snake_case("IPAddress") == "ip_address"


def test_no_value_stays_no_value() -> None:
    """None and the empty string are no classification, not an empty word."""
    assert optional_snake(None) is None
    assert optional_snake("") is None
    assert optional_snake("FalsePositive") == "false_positive"

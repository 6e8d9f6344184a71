"""Who owns which lease: an even, stable assignment, and one replica's claims and releases."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.core.model import Holding
from sentinel_bridge.sync.ownership import assignment, plan

KEYS = [f"sub/rg/law-{index:03d}" for index in range(30)]
_keys = st.lists(st.text(min_size=1, max_size=20), min_size=0, max_size=60, unique=True)
_replicas = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True)


@given(keys=_keys, replicas=_replicas)
def test_every_key_has_one_live_owner_and_loads_differ_by_at_most_one(
    keys: list[str], replicas: list[str]
) -> None:
    """Each key to one of the replicas; the loads differ by at most one key."""
    owners = assignment(keys, replicas)
    assert set(owners) == set(keys)
    assert set(owners.values()) <= set(replicas)
    loads = [list(owners.values()).count(replica) for replica in replicas]
    assert max(loads) <= math.ceil(len(keys) / len(replicas))
    assert max(loads) - min(loads) <= 1


@given(replicas=_replicas)
def test_the_assignment_does_not_depend_on_the_order_it_is_given(replicas: list[str]) -> None:
    """Every replica computes the same answer from the same sets."""
    assert assignment(KEYS, replicas) == assignment(list(reversed(KEYS)), sorted(replicas))


def test_a_replica_joining_moves_only_about_its_share() -> None:
    """From 2 to 3 replicas, about a third of the keys move, not all of them."""
    before = assignment(KEYS, ["a", "b"])
    after = assignment(KEYS, ["a", "b", "c"])
    moved = [key for key in KEYS if before[key] != after[key]]
    assert 8 <= len(moved) <= 14
    assert all(after[key] == "c" or before[key] == "c" or key in moved for key in moved)


def test_a_replica_leaving_moves_only_its_own_keys() -> None:
    """When c leaves, a and b keep what they had and split c's keys."""
    before = assignment(KEYS, ["a", "b", "c"])
    after = assignment(KEYS, ["a", "b"])
    for key in KEYS:
        if before[key] != "c":
            assert after[key] == before[key]


def test_no_replicas_no_assignment() -> None:
    """An empty live set assigns nothing (rather than failing)."""
    assert assignment(KEYS, []) == {}


def test_a_lone_replica_claims_every_free_key() -> None:
    """Nobody else alive: all free keys are claimed, none released."""
    steps = plan("me", KEYS, ["me"], {}, orphan_after=10)
    assert set(steps.claim) == set(KEYS) and steps.release == ()


def test_keys_held_by_a_live_other_replica_are_left_alone() -> None:
    """A key another replica holds is neither claimed nor released by me."""
    holdings = {key: Holding("other") for key in KEYS}
    steps = plan("me", KEYS, ["me", "other"], holdings, orphan_after=10)
    assert steps == plan("me", KEYS, ["me", "other"], holdings, orphan_after=10)
    assert steps.claim == () and steps.release == ()


def test_keys_assigned_to_another_live_replica_are_handed_over() -> None:
    """Holding everything while another replica is alive: release its share, keep mine."""
    holdings = {key: Holding("me") for key in KEYS}
    wanted = assignment(KEYS, ["me", "new"])
    steps = plan("me", KEYS, ["me", "new"], holdings, orphan_after=10)
    assert set(steps.release) == {key for key in KEYS if wanted[key] == "new"}
    assert steps.claim == ()


def test_a_free_key_of_another_replica_is_claimed_only_once_it_is_an_orphan() -> None:
    """Free for less than orphan_after: left to its assignee; longer: anyone claims it."""
    wanted = assignment(KEYS, ["me", "other"])
    theirs = next(key for key in KEYS if wanted[key] == "other")
    fresh = plan("me", [theirs], ["me", "other"], {theirs: Holding(None, 1.0)}, orphan_after=10)
    stale = plan("me", [theirs], ["me", "other"], {theirs: Holding(None, 10.0)}, orphan_after=10)
    assert theirs not in fresh.claim and theirs in stale.claim


def test_keys_nobody_configures_any_more_are_released() -> None:
    """A held key that left the configuration is released."""
    steps = plan("me", KEYS[:1], ["me"], {"gone": Holding("me")}, orphan_after=10)
    assert steps.release == ("gone",)


def test_me_counts_as_live_even_before_my_heartbeat_is_read() -> None:
    """The live set from the store may lack me for a moment: I still take my share."""
    assert plan("me", KEYS, [], {}, orphan_after=10).claim == tuple(sorted(KEYS))

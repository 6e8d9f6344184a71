"""Which replica should own which lease, and what one replica does about it: pure decisions.

Every replica computes the same assignment from the same inputs (the configured keys and the
live replicas, both read from the store): rendezvous hashing with bounded load. Each key
ranks the replicas by a hash of (key, replica) and goes to the best-ranked one that has room.
So the spread is even (within one key), and when a replica joins or leaves mostly its share
of keys moves, not everything.

A replica then claims the free keys assigned to it, hands back the ones assigned to another
live replica (so a new replica gets its share), and drops keys nobody configures any more.
Views of the live set can differ for a moment (a heartbeat in flight): a key that has been
free for `orphan_after` seconds is claimed by whoever sees it, so no key stays unowned because
two replicas each thought it was the other's.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..core.model import Holding

FREE = Holding(None, math.inf)


@dataclass(frozen=True)
class Plan:
    claim: tuple[str, ...] = ()
    release: tuple[str, ...] = ()


def _weight(key: str, replica: str) -> bytes:
    return hashlib.blake2b(f"{key}\x00{replica}".encode(), digest_size=8).digest()


def assignment(keys: Sequence[str], replicas: Sequence[str]) -> dict[str, str]:
    """Each key's replica: the best-ranked one with room. Every replica ends with
    floor(keys / replicas) keys or one more, and only keys mod replicas of them with one
    more, so the spread is even to within one key."""
    members = sorted(set(replicas))
    if not members:
        return {}
    wanted = sorted(set(keys))
    base, extra = divmod(len(wanted), len(members))
    load = dict.fromkeys(members, 0)
    owners: dict[str, str] = {}
    for key in wanted:
        ranked = sorted(members, key=lambda replica: _weight(key, replica), reverse=True)
        chosen = next(r for r in ranked if load[r] < base or (load[r] == base and extra > 0))
        if load[chosen] == base:
            extra -= 1  # one of the replicas that may carry one key more
        owners[key] = chosen
        load[chosen] += 1
    return owners


def plan(
    me: str,
    keys: Sequence[str],
    replicas: Sequence[str],
    holdings: Mapping[str, Holding],
    orphan_after: float,
) -> Plan:
    """What `me` claims and releases now. `replicas` are the live ones (`me` among them);
    `holdings` has every configured key (a key missing from it counts as never claimed)."""
    live = {*replicas, me}
    wanted = assignment(keys, sorted(live))
    claim = []
    for key in sorted(set(keys)):
        holding = holdings.get(key, FREE)
        if holding.owner is None and (wanted[key] == me or holding.free_for >= orphan_after):
            claim.append(key)
    mine = sorted(key for key, holding in holdings.items() if holding.owner == me)
    release = [key for key in mine if key not in wanted or wanted[key] != me]
    return Plan(tuple(claim), tuple(release))

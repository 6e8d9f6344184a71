"""Several replicas on PostgreSQL: how long a workspace goes unticked when the replica that
owns it is killed, and whether three replicas cost more ARM requests than one.

(a) Failover: `replicas` replicas (`sentinel-bridge run`, rig in pgrig.py) on a fresh database,
a trickle of incidents. `kills` times: wait until the cluster is settled (every replica up and
holding its share of the leases), wait a random part of a renewal interval, SIGKILL the
replica the `leases` table names as the owner of one workspace (taking the workspaces in
turn), and measure the time from the kill until that workspace's `checkpoints.last_success_at`
passes it (a successful tick ended, on another replica); restart the killed slot. Target: the
worst failover within the lease TTL plus one poll interval.

(b) ARM cost: one replica, then three, on the same workload (same seed: the same incidents
created and modified at the same moments, the same window and drain). After a warm-up (every
workspace ticked, the leases settled) the emulator's counters are reset; ARM requests of the
window and drain divided by the incidents delivered. Target: three replicas within 5% of one.

Both report lost / duplicated (the emulator's audit). Needs a PostgreSQL server: --pg-url,
else $SENTINEL_BRIDGE_BENCH_PG_URL or $SENTINEL_BRIDGE_TEST_PG_URL, else the local default.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator
from sentinel_bridge_emulator.audit import Audit, audit

from .common import Row, new_emulator, wait_until
from .pgrig import Cluster, cluster, pg_url

ARM_TARGET_RATIO = 1.05


@dataclass(frozen=True)
class Params:
    replicas: int
    workspaces: int
    ttl: float
    poll_seconds: float  # (a)
    kills: int
    arm_workspaces: int
    arm_poll_seconds: float  # (b): long enough that listing does not drown the enrichment
    every_seconds: float  # (b): one incident per this many seconds, over all workspaces
    measure_seconds: float  # (b)
    seed: int
    server: str

    @property
    def renew(self) -> float:
        return self.ttl / 3  # the bridge's default renewal interval

    def env(self, poll_seconds: float) -> dict[str, str]:
        return {
            "SENTINEL_BRIDGE_CLUSTER__LEASE_TTL_SECONDS": str(self.ttl),
            "SENTINEL_BRIDGE_SYNC__POLL_INTERVAL_SECONDS": str(poll_seconds),
            # A killed replica's outbox claims come back after 2 x timeout + 5 s.
            "SENTINEL_BRIDGE_QUEUE__REQUEST_TIMEOUT_SECONDS": "5",
        }


@dataclass
class ArmOutcome:
    replicas: int
    delivered: int
    arm_requests: int
    operations: dict[str, int]
    result: Audit
    repeated_puts: int
    exit_codes: dict[str, int]

    @property
    def per_incident(self) -> float:
        return self.arm_requests / self.delivered if self.delivered else float("nan")


def run(
    replicas: int = 3,
    workspaces: int = 6,
    ttl: float = 15.0,
    poll_seconds: float = 1.0,
    kills: int = 20,
    arm_workspaces: int = 10,
    arm_poll_seconds: float = 10.0,
    every_seconds: float = 0.5,
    measure_seconds: float = 120.0,
    seed: int = 7,
    server: str | None = None,
) -> list[Row]:
    params = Params(
        replicas, workspaces, ttl, poll_seconds, kills, arm_workspaces, arm_poll_seconds,
        every_seconds, measure_seconds, seed, pg_url(server),
    )  # fmt: skip
    rows = _failover_rows(params, *_failover(params))
    outcomes = [_arm_cost(params, n) for n in sorted({1, replicas})]
    return rows + _arm_rows(params, outcomes)


# --- (a) failover ---------------------------------------------------------------------------


def _failover(params: Params) -> tuple[list[float], Audit, dict[str, int]]:
    emulator, workspaces = new_emulator(params.workspaces)
    rng = random.Random(params.seed)
    with cluster(emulator, workspaces, params.server, params.env(params.poll_seconds)) as rig:
        for slot in range(params.replicas):
            rig.start(slot)
        with Trickle(emulator, workspaces, every_seconds=2.0, seed=params.seed):
            times = [_one_failover(rig, params, rng, n) for n in range(params.kills)]
        wait_until(lambda: audit(emulator, workspaces).ok, 4 * params.ttl + 60)
        codes = rig.stop_all()
        return times, audit(emulator, workspaces), codes


def _one_failover(rig: Cluster, params: Params, rng: random.Random, n: int) -> float:
    """Kill the owner of workspace n (in turn); seconds until another replica ticked it."""
    key = rig.workspace_keys()[n % len(rig.workspace_keys())]
    owner = None
    while owner is None:  # None: a handover was under way, settle again
        _settle(rig, params)
        time.sleep(rng.uniform(0.0, params.renew))  # anywhere in the owner's renewal cycle
        owner = rig.live().get(rig.holders().get(key) or "")
    killed_at = rig.kill(owner)
    try:
        return _until_ticked(rig, key, killed_at, 4 * params.ttl + 30)
    finally:
        rig.start(owner.slot)


def _settle(rig: Cluster, params: Params) -> None:
    """Every replica up and holding its share: floor(leases / replicas) or one more."""
    share = (len(rig.workspace_keys()) + 1) // params.replicas

    def balanced() -> bool:
        if not rig.settled(params.replicas):
            return False
        held = Counter(holder for holder in rig.holders().values() if holder)
        return all(held[label] >= share for label in rig.live())

    if not wait_until(balanced, 120, every=0.2):
        raise RuntimeError(f"the replicas did not settle; logs in {rig.workdir}")


def _until_ticked(rig: Cluster, key: str, since: float, timeout: float) -> float:
    """Seconds from `since` to the end of the first successful tick of `key` after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = rig.last_success().get(key)
        if at is not None and at.timestamp() > since:
            return at.timestamp() - since
        time.sleep(0.1)
    raise RuntimeError(f"{key} was not ticked within {timeout:.0f} s of the kill")


def _failover_rows(
    params: Params, times: list[float], result: Audit, codes: dict[str, int]
) -> list[Row]:
    name = f"failover, {params.replicas} replicas"
    target = params.ttl + params.poll_seconds
    worst = max(times) if times else float("nan")
    return [
        Row(
            name,
            "parameters",
            f"{params.workspaces} workspaces, TTL {params.ttl:g} s (renew {params.renew:g} s), "
            f"poll {params.poll_seconds:g} s, {len(times)} SIGKILLs of the owner",
        ),
        Row(name, "kill -> first tick elsewhere, p50", f"{statistics.median(times):.1f} s"),
        Row(name, "kill -> first tick elsewhere, min", f"{min(times):.1f} s"),
        Row(name, "kill -> first tick elsewhere, max", f"{worst:.1f} s", f"<= {target:g} s",
            worst <= target),
        _lost_row(name, result),
        Row(name, "graceful exits at the end", _codes(codes), "all 0",
            set(codes.values()) == {0}),
    ]  # fmt: skip


# --- (b) ARM requests per incident ----------------------------------------------------------


def _arm_cost(params: Params, replicas: int) -> ArmOutcome:
    emulator, workspaces = new_emulator(params.arm_workspaces)
    env = params.env(params.arm_poll_seconds)
    with cluster(emulator, workspaces, params.server, env) as rig:
        for slot in range(replicas):
            rig.start(slot)
        _warm_up(rig, replicas)
        emulator.reset_stats()
        _generate(emulator, workspaces, params)
        time.sleep(2 * params.arm_poll_seconds + 10)  # the same drain for every run
        stats = emulator.stats
        result = audit(emulator, workspaces)
        puts = Counter((r.alert_id, r.revision) for r in emulator.queue.put_log if r.revision)
        codes = rig.stop_all()
    return ArmOutcome(
        replicas, result.alerts, stats.arm_total(), dict(stats.arm_operations), result,
        sum(n - 1 for n in puts.values()), codes,
    )  # fmt: skip


def _warm_up(rig: Cluster, replicas: int) -> None:
    """Leases settled and every workspace ticked once (tokens fetched, first listings)."""

    def ready() -> bool:
        ticked = rig.last_success()
        return rig.settled(replicas) and all(ticked.get(key) for key in rig.workspace_keys())

    if not wait_until(ready, 120, every=0.25):
        raise RuntimeError(f"the replicas did not warm up; logs in {rig.workdir}")
    time.sleep(2.0)  # handovers of the first seconds end their ticks


def _generate(emulator: Emulator, workspaces: list[EmulatedWorkspace], params: Params) -> None:
    """The seeded workload: an incident every `every_seconds` on average in a random
    workspace, a fifth of the time an earlier one modified too, over `measure_seconds`."""
    rng = random.Random(params.seed)
    ids: list[str] = []
    began = time.monotonic()
    at = rng.expovariate(1 / params.every_seconds)
    while at < params.measure_seconds:
        time.sleep(max(0.0, began + at - time.monotonic()))
        workspace = workspaces[rng.randrange(len(workspaces))]
        ids.append(emulator.sentinel.create_incident(workspace, title="failover")["id"])
        if rng.random() < 0.2:
            emulator.sentinel.modify_incident(rng.choice(ids), severity=rng.choice(_SEVERITIES))
        at += rng.expovariate(1 / params.every_seconds)
    time.sleep(max(0.0, began + params.measure_seconds - time.monotonic()))


_SEVERITIES = ("Low", "Medium", "High")


def _arm_rows(params: Params, outcomes: list[ArmOutcome]) -> list[Row]:
    rows = [
        Row(
            "ARM cost, 1 vs 3 replicas",
            "parameters",
            f"{params.arm_workspaces} workspaces, poll {params.arm_poll_seconds:g} s, "
            f"1 incident per {params.every_seconds:g} s (20% also modify one) for "
            f"{params.measure_seconds:g} s + {2 * params.arm_poll_seconds + 10:g} s drain, "
            f"seed {params.seed}",
        )
    ]
    for outcome in outcomes:
        name = f"ARM cost, {outcome.replicas} replica{'s' if outcome.replicas > 1 else ''}"
        rows += [
            Row(name, "ARM requests / incidents delivered",
                f"{outcome.arm_requests} / {outcome.delivered} = {outcome.per_incident:.2f}"),
            Row(name, "by operation", _codes(outcome.operations)),
            Row(name, "the same revision PUT again", str(outcome.repeated_puts), "0",
                outcome.repeated_puts == 0),
            _lost_row(name, outcome.result),
        ]  # fmt: skip
    if len(outcomes) == 2:
        ratio = outcomes[1].per_incident / outcomes[0].per_incident
        rows.append(
            Row("ARM cost, 3 vs 1", "per-incident ratio", f"{ratio:.3f}",
                f"<= {ARM_TARGET_RATIO:.2f}", ratio <= ARM_TARGET_RATIO)
        )  # fmt: skip
    return rows


# --- shared ---------------------------------------------------------------------------------


class Trickle:
    """An incident every `every_seconds` on average in a random workspace, from a thread."""

    def __init__(
        self,
        emulator: Emulator,
        workspaces: list[EmulatedWorkspace],
        every_seconds: float,
        seed: int,
    ) -> None:
        self._create: Callable[[EmulatedWorkspace], object] = emulator.sentinel.create_incident
        self._workspaces = workspaces
        self._every = every_seconds
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._rng.expovariate(1 / self._every)):
            self._create(self._rng.choice(self._workspaces))


def _lost_row(name: str, result: Audit) -> Row:
    lost, duplicated = len(result.missing_or_behind), len(result.duplicated)
    return Row(name, f"lost / duplicated ({result.incidents} incidents)",
               f"{lost} / {duplicated}", "0 / 0", result.ok)  # fmt: skip


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))

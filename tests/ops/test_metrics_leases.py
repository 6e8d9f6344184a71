"""Lease metrics of several replicas on PostgreSQL: what PrometheusTelemetry's lease methods
change in the exported text (claims by takeover or not, losses, leases held)."""

from __future__ import annotations

from sentinel_bridge.ops import metrics
from sentinel_bridge.ops.metrics import PrometheusTelemetry
from tests.ops.test_ops_http import Samples, parse_samples, value

CLAIMS = "sentinel_bridge_lease_claims_total"
LOSSES = "sentinel_bridge_lease_losses_total"
HELD = "sentinel_bridge_leases_held"


def exported() -> Samples:
    return parse_samples(metrics.render().decode())


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def test_claims_are_counted_by_whether_they_took_a_lease_over() -> None:
    """Two claims of free leases and one takeover: takeover="false" +2, takeover="true" +1."""
    telemetry = PrometheusTelemetry()
    before = exported()
    telemetry.lease_claimed(takeover=False)
    telemetry.lease_claimed(takeover=False)
    telemetry.lease_claimed(takeover=True)
    after = exported()
    assert delta(before, after, CLAIMS, takeover="false") == 2
    assert delta(before, after, CLAIMS, takeover="true") == 1


def test_a_lost_lease_is_counted_and_nothing_else_moves() -> None:
    """lease_lost adds one to the losses and claims nothing."""
    telemetry = PrometheusTelemetry()
    before = exported()
    telemetry.lease_lost()
    after = exported()
    assert delta(before, after, LOSSES) == 1
    assert delta(before, after, CLAIMS, takeover="false") == 0
    assert delta(before, after, CLAIMS, takeover="true") == 0


def test_leases_held_is_the_last_count_reported() -> None:
    """The gauge follows the count, down to 0 when the replica released everything."""
    telemetry = PrometheusTelemetry()
    telemetry.leases_held(3)
    assert value(exported(), HELD) == 3
    telemetry.leases_held(0)
    assert value(exported(), HELD) == 0

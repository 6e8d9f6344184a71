"""deploy/alerts.yml: valid Prometheus rules, on series the bridge really exports, that fire
when they should (`promtool` where installed; the YAML checks run everywhere)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge.ops import metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "alerts.yml"
PROMTOOL = shutil.which("promtool")
_NAME = re.compile(r"\bsentinel_bridge_[a-z0-9_]+")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
LAST_OK = "sentinel_bridge_last_successful_tick_timestamp_seconds"
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def rules() -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_names() -> set[str]:
    """Every sample name the registry can export, children or not."""
    names: set[str] = set()
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def test_every_metric_an_alert_uses_is_exported_by_the_bridge() -> None:
    """A renamed or removed series would leave an alert that can never fire: none does."""
    exported = exported_names()
    used = {name for rule in rules() for name in _NAME.findall(rule["expr"])}
    assert used, "the rules reference no bridge metric"
    assert used <= exported, sorted(used - exported)


def test_the_alerts_asked_for_are_there_with_severity_and_summary() -> None:
    """Stale tenant, growing outbox, parked changes, token and change-feed failures exist,
    and each alert says how bad it is and what happened."""
    found = {rule["alert"]: rule for rule in rules()}
    assert {
        "SentinelBridgeTenantStale",
        "SentinelBridgeOutboxGrowing",
        "SentinelBridgeReverseParked",
        "SentinelBridgeTokenFailures",
        "SentinelBridgeChangeFeedFailing",
    } <= set(found)
    for name, rule in found.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` finds the file valid."""
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_stale_tenant_parked_changes_and_feed_errors_fire(tmp_path: Path) -> None:
    """promtool's rule tests: a tenant whose last success stays 20 minutes old is stale, a
    parked change alerts after 10 minutes, three feed errors in 10 minutes alert, pushes
    refused for a bad token alert (accepted ones do not), and a tenant that keeps ticking
    does not."""
    assert PROMTOOL is not None
    by_name = {rule["alert"]: rule["annotations"] for rule in rules()}
    # promtool compares annotations too: the rendered text of each expected alert.
    stale = {**by_name["SentinelBridgeTenantStale"]}
    stale["summary"] = "tenant old: no successful forward tick for 15 minutes"
    parked = {**by_name["SentinelBridgeReverseParked"]}
    parked["summary"] = "1 analyst changes parked for tenant fine"
    feed = by_name["SentinelBridgeChangeFeedFailing"]
    refused = {**by_name["SentinelBridgePushesRefused"]}
    refused["summary"] = "pushes refused as bad_token: incidents wait for the poll"
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(
        textwrap.dedent(
            f"""\
            rule_files: ["{RULES}"]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  - series: 'sentinel_bridge_build_info{{version="1",python="3.11.9"}}'
                    values: '1x30'
                  - series: '{LAST_OK}{{tenant="old"}}'
                    values: '0x30'
                  - series: '{LAST_OK}{{tenant="fine"}}'
                    values: '0+60x30'
                  - series: 'sentinel_bridge_changes_parked_open{{tenant="fine"}}'
                    values: '1x30'
                  - series: 'sentinel_bridge_change_feed_errors_total'
                    values: '0+1x30'
                  - series: 'sentinel_bridge_pushes_total{{outcome="bad_token"}}'
                    values: '0+5x30'
                  - series: 'sentinel_bridge_pushes_total{{outcome="accepted"}}'
                    values: '0+50x30'
                alert_rule_test:
                  - eval_time: 25m
                    alertname: SentinelBridgeTenantStale
                    exp_alerts:
                      - exp_labels: {{severity: critical, tenant: old}}
                        exp_annotations: {json.dumps(stale)}
                  - eval_time: 25m
                    alertname: SentinelBridgeReverseParked
                    exp_alerts:
                      - exp_labels: {{severity: warning, tenant: fine}}
                        exp_annotations: {json.dumps(parked)}
                  - eval_time: 25m
                    alertname: SentinelBridgeChangeFeedFailing
                    exp_alerts:
                      - exp_labels: {{severity: critical}}
                        exp_annotations: {json.dumps(feed)}
                  - eval_time: 25m
                    alertname: SentinelBridgePushesRefused
                    exp_alerts:
                      - exp_labels: {{severity: warning, outcome: bad_token}}
                        exp_annotations: {json.dumps(refused)}
                  - eval_time: 25m
                    alertname: SentinelBridgeMetricsAbsent
                    exp_alerts: []
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

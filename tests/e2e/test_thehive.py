"""TheHive 5 as the queue, end to end: the daemon as a subprocess, the emulator's Sentinel and
its TheHive fake over real sockets (TLS), MSAL's real code path, a SQLite store."""

from __future__ import annotations

import html
import json
import random
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge.core.model import alert_id_for
from sentinel_bridge_emulator import Emulator, EmulatorOptions
from sentinel_bridge_emulator.thehive_audit import thehive_audit

from .conftest import (
    BridgeEnv,
    azure_and_store,
    bridge_command,
    kill_repeatedly,
    new_workspace,
    stop,
    tenant_table,
)
from .test_check_config_online import table
from .test_crash import IncidentStream

pytestmark = pytest.mark.e2e

API_KEY = "e2e-thehive-key-" + uuid.uuid4().hex
BRIDGE = "sentinel-bridge@soc.example"
ANALYST = "alice@soc.example"
# Tenant label -> its organisation: one by default (the tenant's name), one set in the file.
ORGANISATIONS = {"contoso": "contoso", "fabrikam": "soc-fabrikam"}


def write_thehive_config(env: BridgeEnv, store_url: str) -> None:
    options, endpoints = env.emulator.options, env.endpoints
    tenants = "".join(
        tenant_table(name, ws, f'thehive_organisation = "{ORGANISATIONS[name]}"\n')
        if name == "fabrikam"
        else tenant_table(name, ws)
        for name, ws in zip(ORGANISATIONS, env.workspaces, strict=True)
    )
    queue = f"""
[queue]
type = "thehive"
url = "{endpoints.thehive_url}"
api_key = "{API_KEY}"
ca_bundle = "{endpoints.ca_path}"

[sync]
reverse_interval_seconds = 0.5
"""
    env.config.write_text(azure_and_store(endpoints, options, store_url) + queue + tenants, "utf-8")


@pytest.fixture
def hive_env(tmp_path: Path) -> Iterator[BridgeEnv]:
    options = EmulatorOptions(client_secret="e2e-secret-" + uuid.uuid4().hex)
    emulator = Emulator(options)
    workspaces = [emulator.add_workspace(new_workspace(name)) for name in ORGANISATIONS]
    for organisation in ORGANISATIONS.values():
        emulator.thehive.add_organisation(organisation)
    emulator.thehive.add_api_key(API_KEY, BRIDGE, list(ORGANISATIONS.values()))
    with emulator.serve_in_thread() as endpoints:
        env = BridgeEnv(emulator, endpoints, workspaces, tmp_path / "config.toml", tmp_path)
        write_thehive_config(env, f"sqlite+aiosqlite:///{tmp_path}/state/bridge.db")
        yield env
        for output in env.outputs:
            assert API_KEY not in output
            assert options.client_secret not in output


def exactly_once_problems(env: BridgeEnv) -> list[str]:
    """The incidents without exactly one current alert in their tenant's organisation, and
    the alerts created more than once (the TheHive oracle, which shares no code with the
    adapter)."""
    organisations = dict(zip(env.workspaces, ORGANISATIONS.values(), strict=True))
    result = thehive_audit(env.emulator, organisations)
    return [
        *result.missing_or_behind,
        *(f"{ref} created {n}x" for ref, n in result.duplicated.items()),
    ]


def _once(env: BridgeEnv) -> None:
    result = env.run_once()
    assert result.returncode == 0, result.output


def _thehive_id(env: BridgeEnv, incident: dict[str, Any], organisation: str = "contoso") -> str:
    ref = alert_id_for(incident["id"])
    return next(
        a["_id"] for a in env.emulator.thehive.alerts(organisation) if a["sourceRef"] == ref
    )


def test_two_customers_land_in_two_organisations_exactly_once_across_sigkills(
    hive_env: BridgeEnv, tmp_path: Path
) -> None:
    """Incidents of two tenants keep coming through five SIGKILLs; a final --once leaves each
    as one alert, created once, in its own organisation, at its latest revision."""
    rng = random.Random(20261203)
    log = tmp_path / "daemon.log"
    with IncidentStream(hive_env, seed=3) as stream:
        kill_repeatedly(hive_env, log, rng, times=5, seconds=(1.0, 2.5))
    assert stream.created > 50
    _once(hive_env)
    assert exactly_once_problems(hive_env) == []
    assert len(hive_env.emulator.thehive.alerts()) == len(hive_env.incidents())
    assert hive_env.emulator.thehive.alerts("contoso") and hive_env.emulator.thehive.alerts(
        "soc-fabrikam"
    )
    assert API_KEY not in log.read_text()


def test_a_case_closed_as_false_positive_with_a_comment_closes_the_incidents(
    hive_env: BridgeEnv,
) -> None:
    """Case from one alert, the other merged in, a comment on the case, the case closed as
    FalsePositive: both incidents close as FalsePositive with the summary and get the comment;
    nothing of it comes back as a change after."""
    sentinel, hive = hive_env.emulator.sentinel, hive_env.emulator.thehive
    first, second = (sentinel.create_incident(hive_env.workspaces[0], title=t) for t in "ab")
    _once(hive_env)
    case = hive.analyst_create_case(_thehive_id(hive_env, first), ANALYST)
    hive.analyst_merge(_thehive_id(hive_env, second), case["_id"], ANALYST)
    hive.analyst_comment("case", case["_id"], ANALYST, "Red team <scan>, agreed in advance.")
    hive.analyst_close_case(case["_id"], ANALYST, status="FalsePositive",
                            impact_status="NoImpact", summary="Authorised scan")  # fmt: skip
    _once(hive_env)
    for incident in (first, second):
        props = sentinel.get(incident["id"])["properties"]
        assert (props["status"], props["classification"]) == ("Closed", "FalsePositive")
        assert props["classificationReason"] == "IncorrectAlertLogic"
        assert props["classificationComment"].startswith("Authorised scan")
        texts = [html.unescape(str(c["properties"]["message"]))
                 for c in sentinel.comments(incident["id"])]  # fmt: skip
        assert texts.count("Red team <scan>, agreed in advance.") == 1
    etags = [sentinel.get(incident["id"])["etag"] for incident in (first, second)]
    _once(hive_env)
    assert [sentinel.get(incident["id"])["etag"] for incident in (first, second)] == etags


def test_a_sentinel_comment_reaches_the_alert_once(hive_env: BridgeEnv) -> None:
    """A comment written in Sentinel shows on the TheHive alert once, through several runs,
    and is not mirrored back to Sentinel."""
    sentinel, hive = hive_env.emulator.sentinel, hive_env.emulator.thehive
    incident = sentinel.create_incident(hive_env.workspaces[1], title="c")
    _once(hive_env)
    sentinel.add_comment(incident["id"], "Customer confirms: travelling.")
    for _ in range(3):
        _once(hive_env)
    thehive_id = _thehive_id(hive_env, incident, "soc-fabrikam")
    messages = [c["message"] for c in hive.comments(thehive_id)]
    assert len(messages) == 1 and messages[0].startswith("Customer confirms: travelling.")
    assert len(sentinel.comments(incident["id"])) == 1


def test_a_429_and_5xx_storm_loses_nothing(hive_env: BridgeEnv, tmp_path: Path) -> None:
    """With TheHive throttling and failing a third of the requests while incidents arrive and
    analysts act, everything lands once when the storm is over."""
    sentinel, hive = hive_env.emulator.sentinel, hive_env.emulator.thehive
    early = sentinel.create_incident(hive_env.workspaces[0], title="early")
    _once(hive_env)
    hive.faults.configure(error_rate=0.33, error_status=503)
    hive.faults.inject(429, count=20, retry_after=1)
    log = tmp_path / "storm.log"
    daemon = hive_env.start_daemon(log)
    try:
        with IncidentStream(hive_env, seed=5) as stream:
            time.sleep(1.0)
            hive.analyst_update_alert(_thehive_id(hive_env, early), ANALYST,
                                      status="FalsePositive")  # fmt: skip
            time.sleep(3.0)
        hive.faults.clear()
        time.sleep(2.0)
    finally:
        assert stop(daemon, signal.SIGTERM) == 0, log.read_text()
    assert stream.created > 20
    # The storm did answer creates with both: the bridge met them and retried.
    assert {429, 503} <= {attempt.status for attempt in hive.create_log}
    _once(hive_env)
    assert exactly_once_problems(hive_env) == []
    props = sentinel.get(early["id"])["properties"]
    assert (props["status"], props["classification"]) == ("Closed", "FalsePositive")


def test_the_same_change_fed_twice_writes_once(hive_env: BridgeEnv) -> None:
    """The feed read again from the start (cursor gone) finds its changes journaled: the
    incident is written once, its comment once."""
    sentinel, hive = hive_env.emulator.sentinel, hive_env.emulator.thehive
    incident = sentinel.create_incident(hive_env.workspaces[0], title="twice")
    _once(hive_env)
    thehive_id = _thehive_id(hive_env, incident)
    hive.analyst_update_alert(thehive_id, ANALYST, status="InProgress", assignee=ANALYST)
    hive.analyst_comment("alert", thehive_id, ANALYST, "On it.")
    _once(hive_env)
    after_first = sentinel.get(incident["id"])
    assert after_first["properties"]["status"] == "Active"
    assert after_first["properties"]["owner"]["email"] == ANALYST
    with sqlite3.connect(hive_env.state_dir / "state" / "bridge.db") as db:
        assert db.execute("UPDATE change_cursors SET cursor = NULL").rowcount == 1
    _once(hive_env)
    assert sentinel.get(incident["id"])["etag"] == after_first["etag"]
    assert len(sentinel.comments(incident["id"])) == 1


def test_check_config_online_checks_the_key_and_each_organisation(hive_env: BridgeEnv) -> None:
    """`check-config --online` has a row for TheHive's key and one per organisation; an
    organisation the key's user is not a member of fails its row and the exit code."""
    hive_env.env_overrides["SENTINEL_BRIDGE_STORE__URL"] = (
        f"sqlite+aiosqlite:///{hive_env.state_dir}/check.db"
    )
    passed = bridge_command(hive_env, "check-config", "--online", timeout=90)
    assert passed.returncode == 0, passed.output
    rows = table(passed.stdout)
    assert rows[("queue", hive_env.endpoints.thehive_url)][0] == "ok"
    assert f"user {BRIDGE}" in rows[("queue", hive_env.endpoints.thehive_url)][1]
    assert rows[("organisation", "contoso")][0] == "ok"
    assert rows[("organisation", "soc-fabrikam")][0] == "ok"
    hive_env.config.write_text(
        hive_env.config.read_text().replace('"soc-fabrikam"', '"soc-elsewhere"'), encoding="utf-8"
    )
    hive_env.emulator.thehive.add_organisation("soc-elsewhere")
    failed = bridge_command(hive_env, "check-config", "--online", timeout=90)
    assert failed.returncode == 1, failed.output
    result, detail = table(failed.stdout)[("organisation", "soc-elsewhere")]
    assert result == "FAILED" and "401" in detail
    assert API_KEY not in failed.output


def test_a_tenant_added_by_sighup_delivers_to_its_own_organisation(
    hive_env: BridgeEnv, tmp_path: Path
) -> None:
    """A `[[tenants]]` table added on SIGHUP, with its own `thehive_organisation`, has its
    incidents land there and its analysts' changes come back, without a restart."""
    emulator = hive_env.emulator
    northwind = emulator.add_workspace(new_workspace("northwind"))
    emulator.thehive.add_organisation("soc-northwind")
    emulator.thehive.add_api_key(API_KEY, BRIDGE, [*ORGANISATIONS.values(), "soc-northwind"])
    log = tmp_path / "daemon.log"
    emulator.sentinel.create_incident(hive_env.workspaces[0], title="before the reload")
    daemon = hive_env.start_daemon(log)
    try:
        # Running (its SIGHUP handler in place) once the first tenant's alert is in.
        _wait(lambda: bool(emulator.thehive.alerts("contoso")), log)
        incident = emulator.sentinel.create_incident(northwind, title="after the reload")
        with hive_env.config.open("a", encoding="utf-8") as config:
            config.write(
                f'\n[[tenants]]\nname = "northwind"\ntenant_id = "{northwind.tenant_id}"\n'
                f'subscription_id = "{northwind.subscription_id}"\n'
                f'resource_group = "{northwind.resource_group}"\n'
                f'workspace_name = "{northwind.workspace_name}"\n'
                'thehive_organisation = "soc-northwind"\n'
            )
        daemon.send_signal(signal.SIGHUP)
        _wait(lambda: bool(emulator.thehive.alerts("soc-northwind")), log)
        [alert] = emulator.thehive.alerts("soc-northwind")
        assert alert["sourceRef"] == alert_id_for(incident["id"])
        emulator.thehive.analyst_update_alert(alert["_id"], ANALYST, status="FalsePositive")
        _wait(lambda: sentinel_status(hive_env, incident) == "Closed", log)
    finally:
        assert stop(daemon, signal.SIGTERM) == 0, log.read_text()
    events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line[:1] == "{"]
    assert not [event for event in events if "parked" in event], events


def sentinel_status(env: BridgeEnv, incident: dict[str, Any]) -> str:
    return str(env.emulator.sentinel.get(incident["id"])["properties"]["status"])


def _wait(check: Any, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)

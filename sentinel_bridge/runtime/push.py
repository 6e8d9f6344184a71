"""The push endpoint of a running daemon: listener, gate and workspace loops joined.

An accepted push asks the loop of its workspace for a tick now (WorkspaceLoops.trigger, which
debounces); everything else is answered and counted. Refusals are logged as warnings, but at
most one line per reason and sender a minute (with how many were folded into it): a flood of
forged pushes must not become a flood of log lines. Secrets and tokens reload with SIGHUP;
the address, TLS and limits are read at start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from anyio.abc import TaskGroup

from ..adapters import push_http
from ..adapters.sentinel.push import pushed_workspace_key
from ..config import PushSettings, Settings
from ..core.model import Workspace
from ..core.ports import PushAnswer, PushRequest, Telemetry
from ..sync.push_gate import PushCredentials, PushGate, PushLimits
from .workspaces import workspace_of

log = structlog.get_logger(__name__)

_REFUSAL_LOG_SECONDS = 60.0


class WorkspaceLoops(Protocol):
    """The running loops (supervisor.WorkspaceLoops): look one up, bring its tick forward."""

    def workspace(self, key: str) -> Workspace | None: ...

    def trigger(self, key: str) -> bool: ...


def credentials_of(settings: Settings) -> PushCredentials:
    """Signing keys and the bearer token of each enabled tenant that has one, by workspace."""
    tokens = {
        workspace_of(tenant).key: tenant.push_token.get_secret_value().encode()
        for tenant in settings.enabled_tenants
        if tenant.push_token is not None
    }
    return PushCredentials(settings.push.signing_keys, tokens)


def _read_at_start(push: PushSettings) -> dict[str, object]:
    """The settings the running listener and gate keep until a restart (no secrets)."""
    return push.model_dump(exclude={"secrets", "secrets_file"})


def limits_of(push: PushSettings) -> PushLimits:
    return PushLimits(
        tolerance_seconds=push.timestamp_tolerance_seconds,
        per_address_per_minute=push.per_address_per_minute,
        per_workspace_per_minute=push.per_workspace_per_minute,
    )


@dataclass
class _RefusalLog:
    """One warning per (reason, sender) a minute; the rest counted into the next one."""

    last: dict[tuple[str, str], float] = field(default_factory=dict)
    folded: dict[tuple[str, str], int] = field(default_factory=dict)

    def warn(self, peer: str, source: str, answer: PushAnswer, tenant: str | None) -> None:
        key = (answer.outcome, peer)
        now = time.monotonic()
        if now - self.last.get(key, -_REFUSAL_LOG_SECONDS) < _REFUSAL_LOG_SECONDS:
            self.folded[key] = self.folded.get(key, 0) + 1
            return
        if len(self.last) > 10_000:  # many senders: forget the old ones rather than grow
            self.last.clear()
            self.folded.clear()
        self.last[key] = now
        extra = {"tenant": tenant} if tenant else {}
        log.warning(
            "push refused",
            reason=answer.outcome,
            status=answer.status,
            peer=peer,
            source=source,
            folded=self.folded.pop(key, 0),
            **extra,
        )


class PushEndpoint:
    """The handler the listener calls: decide, trigger, count, log."""

    def __init__(self, settings: Settings, loops: WorkspaceLoops, telemetry: Telemetry) -> None:
        self._started = _read_at_start(settings.push)
        self._loops = loops
        self._telemetry = telemetry
        self._gate = PushGate(
            {"sentinel": pushed_workspace_key},
            loops.workspace,
            credentials_of(settings),
            limits_of(settings.push),
        )
        self._refusals = _RefusalLog()

    def reconfigure(self, settings: Settings) -> None:
        """After a reload: the new secrets and tokens (the listener itself stays)."""
        self._gate.credentials = credentials_of(settings)
        if _read_at_start(settings.push) != self._started:
            log.warning(
                "push listener settings changed; they apply after a restart",
                keys=sorted(k for k, v in _read_at_start(settings.push).items()
                            if self._started.get(k) != v),
            )  # fmt: skip

    async def __call__(self, request: PushRequest) -> PushAnswer:
        verdict = self._gate.decide(request, time.time(), time.monotonic())
        answer, workspace = verdict.answer, verdict.workspace
        tenant = workspace.tenant if workspace is not None else None
        self._telemetry.push_answered(tenant, answer.outcome)
        if answer.outcome == "accepted" and workspace is not None:
            self._loops.trigger(workspace.key)
            log.debug("push accepted", **workspace.log_context(), peer=request.peer)
        elif answer.outcome == "duplicate":
            log.debug("push repeated", tenant=tenant, peer=request.peer)
        else:
            self._refusals.warn(request.peer, request.source, answer, tenant)
        return answer

    def refused_unread(self, peer: str, answer: PushAnswer) -> None:
        """A request the listener refused before the gate (framing, size, time)."""
        self._telemetry.push_answered(None, answer.outcome)
        self._refusals.warn(peer, "", answer, None)


async def start_push(
    group: TaskGroup, settings: Settings, loops: WorkspaceLoops, telemetry: Telemetry
) -> PushEndpoint | None:
    """Open the push listener in `group` if `[push] listen` is set."""
    push = settings.push
    if not push.listen:
        return None
    endpoint = PushEndpoint(settings, loops, telemetry)
    options = push_http.ListenerOptions(
        push.listen, push.max_body_bytes, push.tls_certificate, push.tls_private_key
    )
    await group.start(push_http.serve, endpoint, endpoint.refused_unread, options)
    return endpoint

"""The emulator: a token authority, the Sentinel incidents API, the central queue and a
TheHive 5 fake, each on its own TLS port of 127.0.0.1, sharing one lock-guarded state that
tests drive."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from .arm import ArmService
from .arm_handlers import build_handlers
from .authority import AuthorityEmulator, authority_app
from .automation import EVENTS, Automation
from .control import control_app
from .options import EmulatedWorkspace, EmulatorOptions
from .queue import QueueEmulator
from .queue_http import QueueService
from .sentinel import SentinelEmulator
from .server import serving
from .stats import Counters, EmulatorStats
from .thehive import TheHiveEmulator
from .thehive_http import TheHiveService
from .tls import TlsMaterial, create_tls_material, issue_client_certificate

_ARM_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a running emulator listens, and the CA bundle that verifies it."""

    authority_host: str
    arm_endpoint: str
    queue_url: str
    ca_path: Path
    thehive_url: str

    @property
    def control_url(self) -> str:
        return f"{self.arm_endpoint}/_emulator"

    def as_dict(self) -> dict[str, str]:
        return {
            "authority_host": self.authority_host,
            "arm_endpoint": self.arm_endpoint,
            "queue_url": self.queue_url,
            "thehive_url": self.thehive_url,
            "control_url": self.control_url,
            "ca_path": str(self.ca_path),
        }


class Emulator:
    """Thread-safe: tests may mutate state from any thread while the servers run."""

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        self.options = options or EmulatorOptions()
        self.lock = threading.RLock()
        self.counters = Counters()
        self.authority = AuthorityEmulator(self.options, self.counters, self.lock)
        self.sentinel = SentinelEmulator(self.options, self.lock)
        self.queue = QueueEmulator(self.options, self.lock)
        # Empty until a test or the demo adds organisations and API keys to it.
        self.thehive = TheHiveEmulator(lock=self.lock)
        self.endpoints: Endpoints | None = None
        self.automations: list[Automation] = []
        self._tls: TlsMaterial | None = None

    def add_workspace(self, workspace: EmulatedWorkspace) -> EmulatedWorkspace:
        """Host a workspace; its tenant becomes known to the token authority."""
        self.sentinel.add_workspace(workspace)
        self.authority.register_tenant(workspace.tenant_id)
        return workspace

    def add_automation(
        self,
        workspace: EmulatedWorkspace,
        url: str,
        *,
        webhook_secret: str | None = None,
        bearer_token: str | None = None,
        ca_path: str | None = None,
        delay_seconds: float = 0.0,
        on: tuple[str, ...] = EVENTS,
    ) -> Automation:
        """An automation rule on `workspace` whose playbook POSTs each incident created or
        updated (`on`) to `url`, signed with `webhook_secret` and/or with `bearer_token`.
        It runs until stop_automations, which the end of serve() calls too."""
        automation = Automation(
            self.sentinel.store(workspace), self.lock, url, webhook_secret=webhook_secret,
            bearer_token=bearer_token, ca_path=ca_path, delay_seconds=delay_seconds, on=on,
        )  # fmt: skip
        with self.lock:
            self.automations.append(automation)
        return automation

    def stop_automations(self) -> None:
        """Stop every automation rule's worker (unsent pushes are dropped)."""
        with self.lock:
            automations, self.automations = self.automations, []
        for automation in automations:
            automation.stop()

    def revoke_consent(self, tenant_id: str, revoked: bool = True) -> None:
        """The customer withdrew consent: that tenant's token requests fail from now on."""
        self.authority.revoke_consent(tenant_id, revoked)

    @property
    def workspaces(self) -> list[EmulatedWorkspace]:
        return self.sentinel.workspaces

    @property
    def stats(self) -> EmulatorStats:
        with self.lock:
            return self.counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and refill every throttling bucket."""
        with self.lock:
            self.counters.reset()
        self.sentinel.throttle.reset()

    @property
    def tls(self) -> TlsMaterial:
        """The CA and server certificate, made on first use."""
        with self.lock:
            if self._tls is None:
                directory = self.options.tls_dir or Path(tempfile.mkdtemp(prefix="sb-emu-"))
                if self.options.tls_dir is None:
                    weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
                self._tls = create_tls_material(directory)
            return self._tls

    def make_client_certificate(self) -> bytes:
        """A private key + certificate PEM that the authority accepts as the app's
        certificate credential (the certificate is registered on the spot)."""
        pem = issue_client_certificate(self.tls)
        self.authority.register_certificate(pem)
        return pem

    def apps(self) -> tuple[Starlette, Starlette, Starlette, Starlette]:
        """The authority, ARM (with /_emulator control), queue and TheHive ASGI apps."""
        arm = ArmService(
            self.sentinel, self.authority, self.counters, self.lock, build_handlers(self.sentinel)
        )
        arm_app = Starlette(routes=[
            Mount("/_emulator", app=control_app(self)),
            Route("/{path:path}", arm.endpoint, methods=_ARM_METHODS),
        ])  # fmt: skip
        queue_app = QueueService(self.queue, self.counters, self.lock).app(
            self.options.queue_prefix
        )
        thehive_app = TheHiveService(self.thehive).app()
        return authority_app(self.authority), arm_app, queue_app, thehive_app

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Endpoints]:
        """Serve all four services in the running event loop until the block exits."""
        if self.endpoints is not None:
            raise RuntimeError("this emulator is already serving")
        tls, host = self.tls, self.options.host
        async with serving(self.apps(), host, tls) as (authority, arm, queue, thehive):
            prefix = "/" + self.options.queue_prefix.strip("/")
            self.endpoints = Endpoints(
                authority_host=f"https://{host}:{authority}",
                arm_endpoint=f"https://{host}:{arm}",
                queue_url=f"https://{host}:{queue}{prefix.rstrip('/')}",
                ca_path=tls.ca_path,
                thehive_url=f"https://{host}:{thehive}",
            )
            try:
                yield self.endpoints
            finally:
                self.endpoints = None
                # A worker may be finishing a POST: wait for it off the event loop.
                await asyncio.to_thread(self.stop_automations)

    @contextlib.contextmanager
    def serve_in_thread(self, timeout: float = 30.0) -> Iterator[Endpoints]:
        """Serve from a background thread with its own event loop (for subprocess tests)."""
        runner = _ThreadRunner(self)
        endpoints = runner.start(timeout)
        try:
            yield endpoints
        finally:
            runner.stop(timeout)


class _ThreadRunner:
    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._endpoints: Endpoints | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="emulator", daemon=True)

    def start(self, timeout: float) -> Endpoints:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the emulator did not start in time")
        if self._error is not None or self._endpoints is None:
            raise RuntimeError("the emulator failed to start") from self._error
        return self._endpoints

    def stop(self, timeout: float) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the starting thread
            self._error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._emulator.serve() as endpoints:
            self._endpoints = endpoints
            self._ready.set()
            await self._stop.wait()

"""Run ASGI apps on TLS sockets bound to ephemeral loopback ports, inside the current loop.

Sockets are bound here (port 0) and handed to uvicorn, so the ports are known before any
client starts and nothing races for a fixed port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from .tls import TlsMaterial


class _Server(uvicorn.Server):
    """uvicorn's server, made quick to stop: tests start and stop one per test."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to whoever owns the process (the daemon, pytest, the CLI).
        yield

    async def main_loop(self) -> None:
        # Wake on the stop event instead of polling every 0.1 s; tick once a second so the
        # Date header stays current.
        while not self.should_exit:
            await self.on_tick(0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Close listeners and drop open connections at once: waiting for each client's TLS
        # close would stall every stop by the graceful timeout.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        await asyncio.sleep(0)  # let connection_lost callbacks run


@dataclass(slots=True)
class _Running:
    server: _Server
    task: asyncio.Task[None]
    port: int


def _config(app: ASGIApp, tls: TlsMaterial) -> uvicorn.Config:
    pem = str(tls.server_pem_path)
    return uvicorn.Config(
        app,
        ssl_certfile=pem,
        ssl_keyfile=pem,
        log_config=None,  # leave the host process's logging alone
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        server_header=False,
        # Outlive client keep-alive pools, so a client never reuses a connection we closed.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
        backlog=1024,
    )


async def _start(app: ASGIApp, host: str, tls: TlsMaterial) -> _Running:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets, and without
    # it every response waits ~40 ms for a delayed ACK (headers and body are two writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    server = _Server(_config(app, tls))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises the startup error
            raise RuntimeError("emulator server stopped during startup")
        await asyncio.sleep(0.005)
    return _Running(server, task, sock.getsockname()[1])


async def _stop(running: _Running) -> None:
    running.server.should_exit = True
    running.server.stopping.set()
    with contextlib.suppress(asyncio.CancelledError, SystemExit):
        await running.task


@contextlib.asynccontextmanager
async def serving(apps: Sequence[ASGIApp], host: str, tls: TlsMaterial) -> AsyncIterator[list[int]]:
    """Serve each app on its own port; yields the ports in the same order."""
    running: list[_Running] = []
    try:
        for app in apps:
            running.append(await _start(app, host, tls))
        yield [item.port for item in running]
    finally:
        await asyncio.gather(*(_stop(item) for item in running))

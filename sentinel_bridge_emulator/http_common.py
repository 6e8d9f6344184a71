"""Small pieces every emulated service shares: JSON answers, fault handling, body parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .faults import Faults, error_body


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return json_response(status, error_body(status, message, code), headers)


async def fault_response(faults: Faults, request: Request) -> Response | None:
    """Delay, then the injected or random failure for this request, if any."""
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000.0)
    injected = faults.pick(request.method, request.url.path)
    if injected is None:
        return None
    return json_response(injected.status, injected.error_body(), injected.headers())


async def json_body(request: Request) -> tuple[bool, Any]:
    """(True, parsed) or (False, None) when the body is not JSON."""
    raw = await request.body()
    try:
        return True, json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False, None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

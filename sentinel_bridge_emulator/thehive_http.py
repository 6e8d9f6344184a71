"""HTTP front of the TheHive 5 fake (thehive.py): TheHive's v1 routes, thin over the state.

Every request goes through the same steps: faults first (a proxy in front of TheHive
answers before it: latency, one-shot injected answers such as 429 with Retry-After, random
5xx storms, all switchable at runtime on `TheHiveEmulator.faults`), then the body (at most
MAX_BODY_BYTES, JSON only), then the API key and X-Organisation, then the handler. Errors
are TheHive's `{"type", "message"}` bodies; a create answered by a fault or refused before
the handler is still logged, so tests count every attempt at an alert.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import InjectedResponse, error_code
from .thehive import Caller, TheHiveEmulator
from .thehive_checks import TheHiveError, bad_request

MAX_BODY_BYTES = 8 * 1024 * 1024  # above the 1 MiB description limit, with room to spare
CREATE_ALERT_PATH = "/api/v1/alert"
NO_CONTENT = (204, None)  # PATCH answers 204 without a body (OpenAPI)

# (hive, caller, request, parsed body) -> (status, JSON answer or None for no body)
Handler = Callable[[TheHiveEmulator, Caller, Request, Any], tuple[int, Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


class TheHiveService:
    """Routes over one TheHiveEmulator; `requests` counts answers by status."""

    def __init__(self, hive: TheHiveEmulator) -> None:
        self.hive = hive
        self.requests: Counter[int] = Counter()
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        routes = [
            Route(path, self._endpoint(handler), methods=[method])
            for path, method, handler in ROUTES
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: self._client_error})

    def _endpoint(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            response = await self._answer(request, handler)
            with self._lock:
                self.requests[response.status_code] += 1
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Handler) -> Response:
        injected = await self._fault(request)
        if injected is not None:
            await self._log_refused_create(request, injected.status_code)
            return injected
        try:
            body = await _json_body(request)
            caller = self.hive.authenticate(
                request.headers.get("authorization"), request.headers.get("x-organisation")
            )
        except TheHiveError as error:
            await self._log_refused_create(request, error.status)
            return _error(error)
        try:
            status, answer = handler(self.hive, caller, request, body)
        except TheHiveError as error:
            return _error(error)
        if answer is None:
            return Response(status_code=status)
        return JSONResponse(answer, status_code=status)

    async def _fault(self, request: Request) -> Response | None:
        """The delay, then the injected or random failure for this request, if any."""
        faults = self.hive.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        injected = faults.pick(request.method, request.url.path)
        if injected is None:
            return None
        return JSONResponse(_fault_body(injected), injected.status, injected.headers())

    async def _log_refused_create(self, request: Request, status: int) -> None:
        """A create that never reached the handler is logged with its key, if readable."""
        if request.method != "POST" or request.url.path != CREATE_ALERT_PATH:
            return
        try:
            body = await _json_body(request)
        except TheHiveError:
            body = None
        authorization = request.headers.get("authorization")
        organisation = request.headers.get("x-organisation") or self.hive.default_organisation(
            authorization
        )
        self.hive.log_create(organisation, body, status)

    async def _client_error(self, request: Request, error: Exception) -> Response:
        """Unknown routes and methods, shaped as TheHive's onClientError answers them."""
        status = error.status_code if isinstance(error, HTTPException) else 500
        kinds = {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}
        body = {
            "type": kinds.get(status, "Unknown"),
            "message": f"{request.method} {request.url.path}: {getattr(error, 'detail', '')}",
        }
        with self._lock:
            self.requests[status] += 1
        return JSONResponse(body, status_code=status)


async def _json_body(request: Request) -> Any:
    """The parsed body (None when empty); 413 past MAX_BODY_BYTES, 400 for what is not
    strict JSON (NaN, Infinity and overflowing numbers included: they could not be
    answered back)."""
    raw = await _raw_body(request)
    if raw is None:
        raise TheHiveError(413, "Unknown", f"Request body larger than {MAX_BODY_BYTES} bytes")
    if not raw:
        return None
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise bad_request("Invalid Json") from None


async def _raw_body(request: Request) -> bytes | None:
    """The body, read once and kept on the request (None: too large, the rest unread)."""
    if "raw_body" not in request.scope:
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > MAX_BODY_BYTES:
                request.scope["raw_body"] = None
                break
        else:
            request.scope["raw_body"] = bytes(raw)
    body: bytes | None = request.scope["raw_body"]
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """1e400 parses as infinity, which no JSON answer could carry back."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _fault_body(injected: InjectedResponse) -> Any:
    if injected.body is not None:
        return injected.body
    return {"type": error_code(injected.status), "message": "Injected fault."}


def _error(error: TheHiveError) -> Response:
    return JSONResponse(error.body(), status_code=error.status)


def _param(request: Request, name: str) -> str:
    return str(request.path_params[name])


# -- the routes ---------------------------------------------------------------------------------


def _create_alert(hive: TheHiveEmulator, caller: Caller, _: Request, body: Any) -> tuple[int, Any]:
    return 201, hive.create_alert(caller, body)


def _get_alert(hive: TheHiveEmulator, caller: Caller, request: Request, _: Any) -> tuple[int, Any]:
    return 200, hive.get_alert(caller, _param(request, "alert_id"))


def _update_alert(
    hive: TheHiveEmulator, caller: Caller, request: Request, body: Any
) -> tuple[int, Any]:
    hive.update_alert(caller, _param(request, "alert_id"), body)
    return NO_CONTENT


def _comment_alert(
    hive: TheHiveEmulator, caller: Caller, request: Request, body: Any
) -> tuple[int, Any]:
    return 201, hive.add_comment(caller, "alert", _param(request, "alert_id"), body)


def _observable_alert(
    hive: TheHiveEmulator, caller: Caller, request: Request, body: Any
) -> tuple[int, Any]:
    return 201, hive.add_alert_observable(caller, _param(request, "alert_id"), body)


def _case_from_alert(
    hive: TheHiveEmulator, caller: Caller, request: Request, body: Any
) -> tuple[int, Any]:
    return 201, hive.create_case_from_alert(caller, _param(request, "alert_id"), body)


def _merge_alert(
    hive: TheHiveEmulator, caller: Caller, request: Request, _: Any
) -> tuple[int, Any]:
    alert_id, case_id = _param(request, "alert_id"), _param(request, "case_id")
    return 200, hive.merge_alert_into_case(caller, alert_id, case_id)


def _get_case(hive: TheHiveEmulator, caller: Caller, request: Request, _: Any) -> tuple[int, Any]:
    return 200, hive.get_case(caller, _param(request, "case_id"))


def _update_case(
    hive: TheHiveEmulator, caller: Caller, request: Request, body: Any
) -> tuple[int, Any]:
    hive.update_case(caller, _param(request, "case_id"), body)
    return NO_CONTENT


def _comment_case(
    hive: TheHiveEmulator, caller: Caller, request: Request, body: Any
) -> tuple[int, Any]:
    return 201, hive.add_comment(caller, "case", _param(request, "case_id"), body)


def _query(hive: TheHiveEmulator, caller: Caller, _: Request, body: Any) -> tuple[int, Any]:
    return 200, hive.query(caller, body)


def _user_current(_hive: TheHiveEmulator, caller: Caller, _: Request, __: Any) -> tuple[int, Any]:
    return 200, _current_user(caller)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    (CREATE_ALERT_PATH, "POST", _create_alert),
    ("/api/v1/alert/{alert_id}", "GET", _get_alert),
    ("/api/v1/alert/{alert_id}", "PATCH", _update_alert),
    ("/api/v1/alert/{alert_id}/comment", "POST", _comment_alert),
    ("/api/v1/alert/{alert_id}/observable", "POST", _observable_alert),
    ("/api/v1/alert/{alert_id}/case", "POST", _case_from_alert),
    ("/api/v1/alert/{alert_id}/merge/{case_id}", "POST", _merge_alert),
    ("/api/v1/case/{case_id}", "GET", _get_case),
    ("/api/v1/case/{case_id}", "PATCH", _update_case),
    ("/api/v1/case/{case_id}/comment", "POST", _comment_case),
    ("/api/v1/query", "POST", _query),
    ("/api/v1/user/current", "GET", _user_current),
)


def _current_user(caller: Caller) -> dict[str, Any]:
    """GET /api/v1/user/current, reduced to what a client checks its key with."""
    return {
        "_type": "User",
        "login": caller.login,
        "name": caller.login,
        "organisation": caller.organisation,
        "permissions": sorted(caller.permissions),
    }

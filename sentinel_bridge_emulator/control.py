"""Loopback-only control API under /_emulator/, so an emulator running as its own process
(`sentinel-bridge emulator`) can be driven like the in-process one. It never returns secrets.

A workspace is named by its workspace name (`law-contoso`), its label (`contoso`) or its key
(`subscription/group/name`, what /workspaces lists); a tenant by its id or by the name of one
of its workspaces. docs/emulator.md lists the endpoints with examples."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .faults import Faults
from .http_common import error_response, json_body, json_response
from .options import EmulatedWorkspace
from .timefmt import parse_ts

if TYPE_CHECKING:
    from .core import Emulator

Action = Callable[[Request, Any], Any]


def control_app(emulator: Emulator) -> Starlette:
    c = _Control(emulator)
    routes = [
        ("GET", "/info", c.info),
        ("GET", "/workspaces", c.workspaces),
        ("POST", "/workspaces", c.add_workspace),
        ("GET", "/incidents", c.incidents),
        ("POST", "/incidents", c.create_incident),
        ("GET", "/incidents/{name}", c.get_incident),
        ("PATCH", "/incidents/{name}", c.modify_incident),
        ("DELETE", "/incidents/{name}", c.delete_incident),
        ("POST", "/incidents/{name}/comments", c.add_comment),
        ("GET", "/queue/alerts", lambda _r, _b: emulator.queue.alerts),
        ("GET", "/queue/put-log", lambda _r, _b: [asdict(p) for p in emulator.queue.put_log]),
        ("GET", "/queue/changes", lambda _r, _b: emulator.queue.changes),
        ("POST", "/queue/changes", c.add_change),
        ("GET", "/stats", lambda _r, _b: emulator.stats.as_dict()),
        ("POST", "/stats/reset", c.reset_stats),
        ("GET", "/faults/{service}", lambda r, _b: c.faults(r).describe()),
        ("PUT", "/faults/{service}", c.configure_faults),
        ("DELETE", "/faults/{service}", c.clear_faults),
        ("POST", "/faults/{service}/inject", c.inject),
        ("PUT", "/throttling", c.throttling),
        ("PUT", "/tenants/{tenant}/consent", c.consent),
        ("POST", "/tenants/{tenant}/expire-tokens", c.expire_tokens),
    ]
    return Starlette(
        routes=[Route(path, _endpoint(action), methods=[method]) for method, path, action in routes]
    )


def _endpoint(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        ok, body = await json_body(request)
        if not ok:
            return error_response(400, "bad_request", "The body is not JSON.")
        try:
            result = action(request, body or {})
        except KeyError as error:
            return error_response(404, "not_found", str(error.args[0] if error.args else error))
        except (ValueError, TypeError) as error:
            return error_response(400, "bad_request", str(error))
        return json_response(200, result if result is not None else {"ok": True})

    return endpoint


class _Control:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def info(self, _request: Request, _body: Any) -> Any:
        endpoints = self.emulator.endpoints
        return {
            "endpoints": endpoints.as_dict() if endpoints else None,
            "client_id": self.emulator.options.client_id,
            "workspaces": self.workspaces(_request, _body),
        }

    def workspaces(self, _request: Request, _body: Any) -> Any:
        return [{**asdict(ws), "key": ws.key} for ws in self.emulator.sentinel.workspaces]

    def add_workspace(self, _request: Request, body: Any) -> Any:
        workspace = self.emulator.add_workspace(EmulatedWorkspace(**body))
        return {**asdict(workspace), "key": workspace.key}

    def incidents(self, request: Request, _body: Any) -> Any:
        return self.emulator.sentinel.incidents(request.query_params["workspace"])

    def create_incident(self, _request: Request, body: Any) -> Any:
        args = dict(body)
        workspace = args.pop("workspace")
        properties = args.pop("properties", {})
        if args.get("created"):
            args["created"] = parse_ts(args["created"])
        return self.emulator.sentinel.create_incident(workspace, **args, **properties)

    def get_incident(self, request: Request, _body: Any) -> Any:
        return self.emulator.sentinel.get(request.path_params["name"])

    def modify_incident(self, request: Request, body: Any) -> Any:
        args = dict(body)
        properties = args.pop("properties", {})
        return self.emulator.sentinel.modify_incident(
            request.path_params["name"], **args, **properties
        )

    def delete_incident(self, request: Request, _body: Any) -> Any:
        self.emulator.sentinel.delete_incident(request.path_params["name"])

    def add_comment(self, request: Request, body: Any) -> Any:
        return self.emulator.sentinel.add_comment(request.path_params["name"], **body)

    def add_change(self, _request: Request, body: Any) -> Any:
        args = dict(body)
        return self.emulator.queue.add_change(args.pop("alert_id"), args.pop("kind"), **args)

    def reset_stats(self, _request: Request, _body: Any) -> Any:
        self.emulator.reset_stats()

    def faults(self, request: Request) -> Faults:
        service = request.path_params["service"]
        targets = {
            "sentinel": self.emulator.sentinel.faults,
            "queue": self.emulator.queue.faults,
            "authority": self.emulator.authority.faults,
        }
        if service not in targets:
            raise KeyError(f"no such service: {service!r} (sentinel, queue, authority)")
        return targets[service]

    def configure_faults(self, request: Request, body: Any) -> Any:
        faults = self.faults(request)
        faults.configure(**body)
        return faults.describe()

    def clear_faults(self, request: Request, _body: Any) -> Any:
        self.faults(request).clear()

    def inject(self, request: Request, body: Any) -> Any:
        args = dict(body)
        self.faults(request).inject(int(args.pop("status")), **args)

    def throttling(self, _request: Request, body: Any) -> Any:
        throttle = self.emulator.sentinel.throttle
        throttle.enabled = bool(body.get("enabled", throttle.enabled))
        if body.get("reset"):
            throttle.reset()
        return {"enabled": throttle.enabled}

    def consent(self, request: Request, body: Any) -> Any:
        self.emulator.authority.revoke_consent(
            self._tenant(request), revoked=bool(body.get("revoked", True))
        )

    def expire_tokens(self, request: Request, _body: Any) -> Any:
        self.emulator.authority.expire_tokens(self._tenant(request))

    def _tenant(self, request: Request) -> str:
        """The tenant id in the path, or the tenant of the workspace named there."""
        ref = request.path_params["tenant"]
        try:
            return self.emulator.sentinel.store(ref).workspace.tenant_id
        except KeyError:
            return str(ref)  # not a workspace: a tenant id

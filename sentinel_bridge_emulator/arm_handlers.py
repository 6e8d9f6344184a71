"""One handler per incidents API operation. State changes happen under the emulator lock;
serialisation happens after it, on resources that are never mutated once published.

https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents
https://learn.microsoft.com/en-us/rest/api/securityinsights/incident-comments
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from starlette.responses import Response

from .arm import Call, Handler
from .http_common import json_body, json_response
from .incidents_store import Record
from .json_types import JsonObject
from .mutations import delete_comment, put_comment, put_incident
from .odata import ListQuery, ODataError, encode_skip_token, parse_list_query
from .payloads import entities_response
from .rules import Rejected, bad_request, writable_properties
from .sentinel import SentinelEmulator

_APP_NAMESPACE = uuid.UUID("a1c3e5f7-0b2d-4f6a-8c9e-1a3b5c7d9e0f")


def build_handlers(sentinel: SentinelEmulator) -> dict[str, Handler]:
    ops = _Operations(sentinel)
    return {
        "list": ops.list_incidents,
        "get": ops.get,
        "put": ops.put,
        "delete": ops.delete,
        "alerts": ops.alerts,
        "entities": ops.entities,
        "comments.list": ops.comments_list,
        "comments.get": ops.comments_get,
        "comments.put": ops.comments_put,
        "comments.delete": ops.comments_delete,
    }


class _Operations:
    def __init__(self, sentinel: SentinelEmulator) -> None:
        self.sentinel = sentinel
        self.lock = sentinel.lock

    async def list_incidents(self, call: Call) -> Response:
        try:
            query = parse_list_query(
                call.request.query_params, self.sentinel.options.default_page_size
            )
        except ODataError as error:
            raise bad_request(str(error)) from None
        with self.lock:
            page, more = call.incidents.query(query)
            body: JsonObject = {"value": [record.resource for record in page]}
        if more or self._repeating(call):
            body["nextLink"] = self._next_link(call, query, page)
        return json_response(200, body)

    async def get(self, call: Call) -> Response:
        with self.lock:
            resource = self._record(call).resource
        return json_response(200, resource)

    async def put(self, call: Call) -> Response:
        body = await _body(call)
        with self.lock:
            existing = call.incidents.get(call.incident)
            current = dict(existing.props) if existing is not None else None
        writable = writable_properties(body, current)
        with self.lock:
            record, created = put_incident(
                call.incidents, call.incident, writable, body.get("etag")
            )
            resource = record.resource
        return json_response(201 if created else 200, resource)

    async def delete(self, call: Call) -> Response:
        with self.lock:
            record = call.incidents.get(call.incident)
            if record is not None:
                call.incidents.remove(record)
        return Response(status_code=200 if record is not None else 204)

    async def alerts(self, call: Call) -> Response:
        with self.lock:
            alerts = list(self._record(call).alerts)
        return json_response(200, {"value": alerts})

    async def entities(self, call: Call) -> Response:
        with self.lock:
            entities = list(self._record(call).entities)
        return json_response(200, entities_response(entities))

    async def comments_list(self, call: Call) -> Response:
        with self.lock:
            comments = list(self._record(call).comments.values())
        return json_response(200, {"value": comments})

    async def comments_get(self, call: Call) -> Response:
        with self.lock:
            comment = self._record(call).comments.get(call.comment.lower())
        if comment is None:
            raise Rejected(404, "NotFound", f"Comment '{call.comment}' not found.")
        return json_response(200, comment)

    async def comments_put(self, call: Call) -> Response:
        message = self._message(await _body(call))
        with self.lock:
            resource, created = put_comment(
                call.incidents, self._record(call), call.comment, message, _app_author(call),
                escape_html=self.sentinel.options.escape_comment_html,
            )  # fmt: skip
        return json_response(201 if created else 200, resource)

    async def comments_delete(self, call: Call) -> Response:
        with self.lock:
            deleted = delete_comment(call.incidents, self._record(call), call.comment)
        return Response(status_code=200 if deleted else 204)

    def _record(self, call: Call) -> Record:
        record = call.incidents.get(call.incident)
        if record is None:
            raise Rejected(404, "NotFound", f"Incident '{call.incident}' not found.")
        return record

    def _message(self, body: Any) -> str:
        props = body.get("properties") if isinstance(body, dict) else None
        message = props.get("message") if isinstance(props, dict) else None
        if not isinstance(message, str) or not message:
            raise bad_request("The comment 'properties.message' is required.")
        limit = self.sentinel.options.comment_max_length
        if len(message) > limit:
            raise bad_request(f"The comment message exceeds the maximum length of {limit}.")
        return message

    def _repeating(self, call: Call) -> bool:
        params = call.request.query_params
        return self.sentinel.faults.repeat_next_link and (
            "$skipToken" in params or "$skiptoken" in params
        )

    def _next_link(self, call: Call, query: ListQuery, page: list[Record]) -> str:
        request = call.request
        if self._repeating(call):
            return str(request.url)
        token = encode_skip_token(
            query.order_field, query.descending, *page[-1].sort_key(query.order_field)
        )
        params = [
            (key, value)
            for key, value in request.query_params.multi_items()
            if key.lower() != "$skiptoken"
        ]
        params.append(("$skipToken", token))
        base = self.sentinel.faults.foreign_next_link or (
            f"{request.url.scheme}://{request.url.netloc}"
        )
        return f"{base.rstrip('/')}{request.url.path}?{urlencode(params, quote_via=quote)}"


async def _body(call: Call) -> Any:
    ok, body = await json_body(call.request)
    if not ok or not isinstance(body, dict):
        raise Rejected(400, "InvalidRequestContent", "The request content is not a JSON object.")
    return body


def _app_author(call: Call) -> JsonObject:
    """Comments written through the API are authored by the app's service principal."""
    object_id = uuid.uuid5(_APP_NAMESPACE, call.grant.principal)
    return {
        "name": "sentinel-bridge",
        "email": None,
        "objectId": str(object_id),
        "userPrincipalName": None,
    }

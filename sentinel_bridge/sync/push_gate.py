"""Which pushes may trigger a tick: the decision, apart from the listener's I/O.

A push is untrusted until it is authenticated, and it is authenticated before its body is
parsed. The order: the sender's address rate, then the credentials (a Standard Webhooks
signature, or a tenant's bearer token), then the workspace the body names, then that
workspace's rate and, for signed pushes, the message id seen before (a replay within the
timestamp tolerance is answered 202 and triggers nothing). Only then is a tick asked for.

Even a push that passes only makes a tick come sooner: the incidents come from the listing.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from ..core.errors import PushPayloadError
from ..core.model import Workspace
from ..core.ports import PushAnswer, PushRequest
from ..core.webhook_signature import WebhookSignatureError, verify
from .rate_limit import RateLimiter

# Signed message ids remembered against replays (a replay older than the tolerance is stale).
_SEEN_IDS = 50_000
_BEARER = "bearer "

# Which workspace key a body names, per source (the adapters' parsers); raises PushPayloadError.
Matcher = Callable[[bytes], str]


@dataclass(frozen=True)
class PushCredentials:
    """What authenticates a push: signing keys, and each workspace's bearer token."""

    signing_keys: Sequence[bytes] = ()
    tokens: Mapping[str, bytes] = field(default_factory=dict)  # workspace key -> token


@dataclass(frozen=True)
class PushLimits:
    tolerance_seconds: float = 300.0
    per_address_per_minute: float = 1200.0
    per_workspace_per_minute: float = 120.0


@dataclass(frozen=True)
class Verdict:
    """The answer, and the workspace whose tick to bring forward (accepted pushes only)."""

    answer: PushAnswer
    workspace: Workspace | None = None


def refused(status: HTTPStatus, outcome: str, retry_after: float | None = None) -> Verdict:
    return Verdict(PushAnswer(int(status), outcome, retry_after))


class PushGate:
    """Decides on each push; `workspaces` looks up a running workspace by key (live)."""

    def __init__(
        self,
        matchers: Mapping[str, Matcher],
        workspaces: Callable[[str], Workspace | None],
        credentials: PushCredentials,
        limits: PushLimits,
    ) -> None:
        self._matchers = matchers
        self._workspaces = workspaces
        self.credentials = credentials
        self._limits = limits
        self._per_address = RateLimiter(limits.per_address_per_minute)
        self._per_workspace = RateLimiter(limits.per_workspace_per_minute)
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.seen_limit = _SEEN_IDS

    def decide(self, request: PushRequest, wall: float, monotonic: float) -> Verdict:
        """The verdict on `request` at Unix time `wall` (signatures) and `monotonic` (rates)."""
        if not self._per_address.allow(request.peer, monotonic):
            wait = self._per_address.retry_after(request.peer, monotonic)
            return refused(HTTPStatus.TOO_MANY_REQUESTS, "rate_limited", wait)
        matcher = self._matchers.get(request.source)
        if matcher is None:
            return refused(HTTPStatus.NOT_FOUND, "not_found")
        token_of = self._authenticate(request, wall)
        if isinstance(token_of, Verdict):
            return token_of
        return self._admit(request, matcher, token_of, wall, monotonic)

    def _admit(
        self,
        request: PushRequest,
        matcher: Matcher,
        token_of: str | None,
        wall: float,
        monotonic: float,
    ) -> Verdict:
        """An authenticated push: its workspace, that workspace's rate, replays."""
        try:
            key = matcher(request.body)
        except PushPayloadError:
            return refused(HTTPStatus.BAD_REQUEST, "bad_payload")
        workspace = self._workspaces(key)
        if workspace is None:
            return refused(HTTPStatus.NOT_FOUND, "unknown_workspace")
        if token_of is not None and token_of != key:
            return Verdict(PushAnswer(int(HTTPStatus.FORBIDDEN), "wrong_tenant"), workspace)
        if not self._per_workspace.allow(key, monotonic):
            wait = self._per_workspace.retry_after(key, monotonic)
            answer = PushAnswer(int(HTTPStatus.TOO_MANY_REQUESTS), "rate_limited", wait)
            return Verdict(answer, workspace)
        # A push without a bearer token passed verify(): it has a webhook-id.
        if token_of is None and self._replayed(request.headers["webhook-id"], wall):
            # Answered as accepted: the sender's retry of a push that did arrive is no error.
            return Verdict(PushAnswer(int(HTTPStatus.ACCEPTED), "duplicate"), workspace)
        return Verdict(PushAnswer(int(HTTPStatus.ACCEPTED), "accepted"), workspace)

    def _authenticate(self, request: PushRequest, wall: float) -> str | Verdict | None:
        """The workspace key a bearer token belongs to, None for a valid signature, or the
        refusal."""
        authorization = request.headers.get("authorization", "")
        if authorization[: len(_BEARER)].lower() == _BEARER:
            key = _token_owner(authorization[len(_BEARER) :].strip(), self.credentials.tokens)
            return key if key is not None else refused(HTTPStatus.UNAUTHORIZED, "bad_token")
        headers = request.headers
        try:
            verify(
                self.credentials.signing_keys,
                headers.get("webhook-id"),
                headers.get("webhook-timestamp"),
                headers.get("webhook-signature"),
                request.body,
                now=wall,
                tolerance=self._limits.tolerance_seconds,
            )
        except WebhookSignatureError as exc:
            return refused(HTTPStatus.UNAUTHORIZED, exc.reason)
        return None

    def _replayed(self, message_id: str, wall: float) -> bool:
        """True if this signed message id was accepted within the tolerance window."""
        horizon = wall - 2 * self._limits.tolerance_seconds
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)
        if message_id in self._seen:
            return True
        self._seen[message_id] = wall
        if len(self._seen) > self.seen_limit:
            self._seen.popitem(last=False)
        return False


def _token_owner(token: str, tokens: Mapping[str, bytes]) -> str | None:
    """The workspace whose token this is; every token is compared, in constant time each."""
    presented = token.encode()  # header text is latin-1 decoded: always encodable
    owner = None
    for key, expected in tokens.items():
        if hmac.compare_digest(presented, expected):
            owner = key
    return owner

"""The push gate: who may bring a workspace's tick forward, decided without I/O."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel_bridge.core.errors import PushPayloadError
from sentinel_bridge.core.model import Workspace
from sentinel_bridge.core.ports import PushRequest
from sentinel_bridge.core.webhook_signature import decode_secret, new_secret, sign
from sentinel_bridge.sync.push_gate import PushCredentials, PushGate, PushLimits, Verdict

KEY = decode_secret(new_secret())
OLD_KEY = decode_secret(new_secret())
NOW = 1_800_000_000.0
CONTOSO = Workspace(tenant="contoso", tenant_id="t1", key="sub-a/rg/law-contoso", name="law")
FABRIKAM = Workspace(tenant="fabrikam", tenant_id="t2", key="sub-b/rg/law-fab", name="law-fab")
TOKENS = {CONTOSO.key: b"contoso-push-token-0123", FABRIKAM.key: b"fabrikam-push-token-456"}


def _match(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        raise PushPayloadError("not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("key"), str):
        raise PushPayloadError("names no workspace")
    return document["key"]


def _gate(**limits: float) -> PushGate:
    running = {CONTOSO.key: CONTOSO, FABRIKAM.key: FABRIKAM}
    return PushGate(
        {"sentinel": _match},
        running.get,
        PushCredentials([KEY, OLD_KEY], TOKENS),
        PushLimits(**limits),
    )


def _body(key: str = CONTOSO.key) -> bytes:
    return json.dumps({"key": key}).encode()


def _signed(
    body: bytes, *, key: bytes = KEY, message: str = "msg_1", at: float = NOW, peer: str = "p"
) -> PushRequest:
    headers = {
        "webhook-id": message,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": sign(key, message, int(at), body),
    }
    return PushRequest("sentinel", peer, headers, body)


def _bearer(body: bytes, token: str, scheme: str = "Bearer") -> PushRequest:
    return PushRequest("sentinel", "p", {"authorization": f"{scheme} {token}"}, body)


def _decide(gate: PushGate, request: PushRequest, monotonic: float = 0.0) -> Verdict:
    return gate.decide(request, NOW, monotonic)


def test_a_signed_push_for_a_running_workspace_is_accepted_with_its_workspace() -> None:
    """A valid signature and a known workspace: 202 accepted, naming that workspace."""
    verdict = _decide(_gate(), _signed(_body()))
    assert (verdict.answer.status, verdict.answer.outcome) == (202, "accepted")
    assert verdict.workspace == CONTOSO


def test_a_push_signed_with_the_previous_secret_is_accepted_during_rotation() -> None:
    """Every configured secret verifies: the old one keeps working until it is removed."""
    assert _decide(_gate(), _signed(_body(), key=OLD_KEY)).answer.outcome == "accepted"


@pytest.mark.parametrize(
    ("request_", "outcome"),
    [
        (PushRequest("sentinel", "p", {}, _body()), "unauthenticated"),
        (_signed(_body(), key=decode_secret(new_secret())), "bad_signature"),
        (_signed(_body(), at=NOW - 301), "stale_timestamp"),
        (_signed(_body(), at=NOW + 301), "stale_timestamp"),
        (_bearer(_body(), "not-a-token-of-anyone"), "bad_token"),
        (_bearer(_body(), ""), "bad_token"),
    ],
)
def test_pushes_without_valid_credentials_are_refused_with_401(
    request_: PushRequest, outcome: str
) -> None:
    """Missing, wrong or stale credentials: 401 with the reason, and no workspace."""
    verdict = _decide(_gate(), request_)
    assert (verdict.answer.status, verdict.answer.outcome) == (401, outcome)
    assert verdict.workspace is None


def test_a_signature_over_another_body_is_refused() -> None:
    """The signature covers the body: the same headers with a different body fail."""
    request = _signed(_body())
    forged = PushRequest("sentinel", "p", request.headers, _body(FABRIKAM.key))
    assert _decide(_gate(), forged).answer.outcome == "bad_signature"


def test_unauthenticated_bodies_are_never_parsed() -> None:
    """The matcher only sees bodies whose credentials passed: a parser bug is not exposed."""
    seen: list[bytes] = []

    def matcher(body: bytes) -> str:
        seen.append(body)
        return CONTOSO.key

    gate = PushGate(
        {"sentinel": matcher}, {CONTOSO.key: CONTOSO}.get, PushCredentials([KEY]), PushLimits()
    )
    gate.decide(_signed(b"{}", key=OLD_KEY), NOW, 0.0)
    gate.decide(PushRequest("sentinel", "p", {}, b"{}"), NOW, 0.0)
    assert seen == []
    gate.decide(_signed(b"{}"), NOW, 0.0)
    assert seen == [b"{}"]


def test_a_tenant_token_triggers_its_own_workspace_only() -> None:
    """A bearer token names its tenant: its workspace is accepted, another is 403."""
    own = _decide(_gate(), _bearer(_body(CONTOSO.key), TOKENS[CONTOSO.key].decode()))
    assert (own.answer.outcome, own.workspace) == ("accepted", CONTOSO)
    other = _decide(_gate(), _bearer(_body(FABRIKAM.key), TOKENS[CONTOSO.key].decode()))
    assert (other.answer.status, other.answer.outcome) == (403, "wrong_tenant")
    assert other.workspace == FABRIKAM  # named in the log line, never triggered


def test_the_bearer_scheme_is_case_insensitive() -> None:
    """`bearer` and `BEARER` are the same scheme (RFC 9110 auth schemes ignore case)."""
    verdict = _decide(_gate(), _bearer(_body(), TOKENS[CONTOSO.key].decode(), "BEARER"))
    assert verdict.answer.outcome == "accepted"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"key": 7}', b""])
def test_an_authenticated_push_naming_no_workspace_is_a_bad_payload(body: bytes) -> None:
    """What the matcher cannot read is 400 bad_payload."""
    answer = _decide(_gate(), _signed(body)).answer
    assert (answer.status, answer.outcome) == (400, "bad_payload")


def test_a_push_for_a_workspace_that_does_not_run_is_404() -> None:
    """Unknown (or disabled) workspaces are refused: 404 unknown_workspace."""
    verdict = _decide(_gate(), _signed(_body("sub-x/rg/law-unknown")))
    assert (verdict.answer.status, verdict.answer.outcome) == (404, "unknown_workspace")


def test_an_unknown_source_in_the_path_is_404() -> None:
    """Only sources with a matcher have an endpoint."""
    request = _signed(_body())
    other = PushRequest("graph", "p", request.headers, request.body)
    assert _decide(_gate(), other).answer.outcome == "not_found"


def test_a_replayed_message_id_is_answered_but_triggers_nothing() -> None:
    """The same webhook-id again within the tolerance: 202 duplicate, not accepted."""
    gate = _gate()
    assert _decide(gate, _signed(_body())).answer.outcome == "accepted"
    again = _decide(gate, _signed(_body()))
    assert (again.answer.status, again.answer.outcome) == (202, "duplicate")
    assert again.workspace == CONTOSO
    assert _decide(gate, _signed(_body(), message="msg_2")).answer.outcome == "accepted"


def test_a_message_id_is_remembered_for_twice_the_tolerance_then_forgotten() -> None:
    """A replay inside 2 x tolerance is a duplicate; later it is stale anyway, so the id is
    dropped (and a re-signed push with it passes)."""
    gate = _gate(tolerance_seconds=100)
    gate.decide(_signed(_body(), at=NOW), NOW, 0.0)
    inside = gate.decide(_signed(_body(), at=NOW + 200), NOW + 200, 0.0)
    assert inside.answer.outcome == "duplicate"
    later = gate.decide(_signed(_body(), at=NOW + 200.5), NOW + 200.5, 0.0)
    assert later.answer.outcome == "accepted"


def test_remembered_message_ids_are_bounded_oldest_first() -> None:
    """Past the limit the oldest id is forgotten, the newest ones are kept."""
    gate = _gate()
    gate.seen_limit = 2
    for message in ("a", "b", "c"):
        gate.decide(_signed(_body(), message=message), NOW, 0.0)
    outcomes = [_decide(gate, _signed(_body(), message=m)).answer.outcome for m in "cba"]
    assert outcomes == ["duplicate", "duplicate", "accepted"]


def test_bearer_pushes_are_not_deduplicated_by_message_id() -> None:
    """Logic Apps send no webhook-id: each bearer push counts (the debounce folds them)."""
    gate = _gate()
    token = TOKENS[CONTOSO.key].decode()
    outcomes = {_decide(gate, _bearer(_body(), token)).answer.outcome for _ in range(3)}
    assert outcomes == {"accepted"}


def test_one_workspace_over_its_rate_gets_429_with_a_wait_others_go_on() -> None:
    """Per-workspace limit: the excess is 429 with Retry-After; another workspace passes."""
    gate = _gate(per_workspace_per_minute=2)
    outcomes = [_decide(gate, _signed(_body(), message=f"m{i}")).answer.outcome for i in range(3)]
    assert outcomes == ["accepted", "accepted", "rate_limited"]
    limited = _decide(gate, _signed(_body(), message="m9"))
    assert limited.answer.status == 429 and limited.workspace == CONTOSO
    assert limited.answer.retry_after is not None and 0 < limited.answer.retry_after <= 30
    assert _decide(gate, _signed(_body(FABRIKAM.key), message="f")).answer.outcome == "accepted"


def test_a_sender_over_its_rate_is_refused_before_anything_else() -> None:
    """Per-address limit applies to every request, even unauthenticated ones."""
    gate = _gate(per_address_per_minute=2)
    junk = PushRequest("sentinel", "attacker", {}, b"")
    assert [_decide(gate, junk).answer.outcome for _ in range(2)] == [
        "unauthenticated",
        "unauthenticated",
    ]
    limited = _decide(gate, junk, monotonic=1.0).answer
    assert (limited.status, limited.outcome) == (429, "rate_limited")
    assert limited.retry_after == pytest.approx(29.0)  # one token per 30 s, 1 s gone
    assert _decide(gate, _signed(_body(), peer="logic-app")).answer.outcome == "accepted"


def test_new_credentials_apply_to_the_next_push() -> None:
    """After a reload, a removed secret stops working and a new token starts working."""
    gate = _gate()
    gate.credentials = PushCredentials([KEY], {CONTOSO.key: b"a-brand-new-token-000"})
    assert _decide(gate, _signed(_body(), key=OLD_KEY)).answer.outcome == "bad_signature"
    assert _decide(gate, _bearer(_body(), "a-brand-new-token-000")).answer.outcome == "accepted"
    old_token = TOKENS[CONTOSO.key].decode()
    assert _decide(gate, _bearer(_body(), old_token)).answer.outcome == "bad_token"


_header_values = st.text(max_size=300) | st.sampled_from(["Bearer ", "bearer x", "v1,AAAA"])


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["authorization", "webhook-id", "webhook-timestamp", "webhook-signature", "x"]
        ),
        _header_values,
    ),
    body=st.binary(max_size=200),
)
def test_hostile_headers_and_bodies_are_refused_never_raise(
    headers: dict[str, str], body: bytes
) -> None:
    """Whatever arrives unauthenticated is a 401 (or 429), never an exception or a 202."""
    verdict = _gate().decide(PushRequest("sentinel", "p", headers, body), NOW, 0.0)
    assert verdict.answer.status in (401, 429)

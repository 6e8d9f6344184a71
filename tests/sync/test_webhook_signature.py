"""Standard Webhooks signatures: the reference test vector, round trips, every refusal reason,
rotation, tolerance edges, hostile headers and secrets that never leak into messages."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.core.webhook_signature import (
    MAX_ID_CHARS,
    MAX_SIGNATURE_CHARS,
    MAX_SIGNATURE_ENTRIES,
    SECRET_PREFIX,
    WebhookSignatureError,
    decode_secret,
    new_secret,
    sign,
    verify,
)

# The vector shared by the reference libraries' "sign function works" tests:
# https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/python/tests/test_webhooks.py
# https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/javascript/src/webhook.test.ts
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = decode_secret(VECTOR_SECRET)
OTHER_KEY = bytes(range(32))
NOW = 1_700_000_000
TOLERANCE = 300
ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = b'{"incidentName": "3e6c", "incidentNumber": 42}'

DECODE_MESSAGES = {
    "a push secret must start with 'whsec_'",
    "the text after 'whsec_' in a push secret is not standard base64",
    "a push secret must decode to at least 16 bytes (24 to 64 recommended)",
}

printable_ids = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=256
)


def check(
    signature: str | None,
    *,
    keys: tuple[bytes, ...] = (KEY,),
    webhook_id: str | None = ID,
    timestamp: str | None = str(NOW),
    body: bytes = BODY,
    now: float = NOW,
) -> None:
    verify(keys, webhook_id, timestamp, signature, body, now, TOLERANCE)


def reason(signature: str | None, **kwargs: object) -> str:
    with pytest.raises(WebhookSignatureError) as refused:
        check(signature, **kwargs)  # type: ignore[arg-type]
    return refused.value.reason


def raw_signature(key: bytes, content: bytes) -> str:
    """A v1 signature computed independently of the module, for ids `sign` refuses."""
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


GOOD = sign(KEY, ID, NOW, BODY)


# The reference vector


def test_sign_reproduces_the_reference_libraries_test_vector() -> None:
    """Our signature is byte for byte what the reference Python and JavaScript libraries sign."""
    assert sign(KEY, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_verify_accepts_the_reference_libraries_test_vector() -> None:
    """A push signed by a reference implementation verifies here."""
    verify(
        [KEY],
        VECTOR_ID,
        str(VECTOR_TIMESTAMP),
        VECTOR_SIGNATURE,
        VECTOR_BODY,
        VECTOR_TIMESTAMP,
        TOLERANCE,
    )


def test_verify_refuses_the_vector_with_its_last_significant_character_changed() -> None:
    """The reference suite's "invalid signature" (one base64 character off) is refused."""
    assert (
        reason(
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            webhook_id=VECTOR_ID,
            timestamp=str(VECTOR_TIMESTAMP),
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP,
        )
        == "bad_signature"
    )


# Round trips and tampering


@given(
    webhook_id=printable_ids,
    body=st.binary(max_size=2048),
    timestamp=st.integers(min_value=0, max_value=2**40),
    skew=st.integers(min_value=-TOLERANCE, max_value=TOLERANCE),
)
def test_whatever_sign_produces_verifies_within_the_tolerance(
    webhook_id: str, body: bytes, timestamp: int, skew: int
) -> None:
    """Any printable id, any body bytes, any timestamp within tolerance: sign then verify."""
    signature = sign(KEY, webhook_id, timestamp, body)
    assert signature.startswith("v1,")
    verify([KEY], webhook_id, str(timestamp), signature, body, timestamp + skew, TOLERANCE)


@given(body=st.binary(max_size=512), other=st.binary(max_size=512))
def test_a_signature_over_another_body_is_refused(body: bytes, other: bytes) -> None:
    """A signature does not carry over to a different body (even one byte longer or shorter)."""
    if body == other:
        other = body + b"\x00"
    assert reason(sign(KEY, ID, NOW, body), body=other) == "bad_signature"


@given(webhook_id=printable_ids, other=printable_ids)
def test_a_signature_for_another_id_is_refused(webhook_id: str, other: str) -> None:
    """The id is signed: replaying a signature under another id fails."""
    if webhook_id == other:
        other = webhook_id[:-1] + ("a" if webhook_id[-1] != "a" else "b")
    assert reason(sign(KEY, webhook_id, NOW, BODY), webhook_id=other) == "bad_signature"


def test_a_signature_for_another_timestamp_is_refused() -> None:
    """The timestamp is signed: moving a replay's timestamp into the window breaks it."""
    old = sign(KEY, ID, NOW - 3600, BODY)
    assert reason(old, timestamp=str(NOW)) == "bad_signature"
    assert reason(sign(KEY, ID, NOW - 1, BODY)) == "bad_signature"


def test_the_timestamp_text_as_sent_is_what_is_verified() -> None:
    """A timestamp with leading zeros verifies only against a signature of that very text."""
    signature = raw_signature(KEY, f"{ID}.0{NOW}.".encode() + BODY)
    check(signature, timestamp=f"0{NOW}")
    assert reason(GOOD, timestamp=f"0{NOW}") == "bad_signature"


# Rotation


def test_a_push_signed_with_the_second_configured_key_passes() -> None:
    """During a rotation both the old and the new secret are configured; either one passes."""
    check(sign(OTHER_KEY, ID, NOW, BODY), keys=(KEY, OTHER_KEY))
    check(GOOD, keys=(KEY, OTHER_KEY))


def test_a_header_carrying_old_and_new_signatures_passes_with_only_the_new_key() -> None:
    """The sender signs with both secrets during a rotation; the receiver may know only one."""
    both = f"{sign(OTHER_KEY, ID, NOW, BODY)} {GOOD}"
    check(both, keys=(KEY,))
    check(both, keys=(OTHER_KEY,))


def test_a_key_that_is_not_configured_does_not_pass() -> None:
    """A signature by an unknown key is refused, and so is every push when no key is set."""
    assert reason(sign(OTHER_KEY, ID, NOW, BODY)) == "bad_signature"
    assert reason(GOOD, keys=()) == "bad_signature"


# Refusal reasons


@pytest.mark.parametrize("missing", ["webhook_id", "timestamp", "signature"])
@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_or_empty_header_is_unauthenticated(missing: str, value: str | None) -> None:
    """Without all three headers there is nothing to verify: "unauthenticated"."""
    headers: dict[str, str | None] = {"webhook_id": ID, "timestamp": str(NOW), "signature": GOOD}
    headers[missing] = value
    signature = headers.pop("signature")
    assert reason(signature, **headers) == "unauthenticated"


def test_missing_headers_are_reported_before_a_stale_timestamp() -> None:
    """A request with no signature at all is unauthenticated, whatever its timestamp says."""
    assert reason(None, timestamp="hello") == "unauthenticated"


@pytest.mark.parametrize(
    "timestamp",
    [
        "hello",
        "1.5",
        f"{NOW}.0",
        f" {NOW}",
        f"{NOW} ",
        f"+{NOW}",
        f"{NOW}\n",
        "1_700_000_000",
        "-1",
        "0x6553f100",
        "\u0661\u0667\u0660\u0660",  # Arabic-Indic digits: int() would take them
        "9" * 17,
        "9" * 100_000,
    ],
)
def test_a_timestamp_that_is_not_a_plain_integer_is_stale(timestamp: str) -> None:
    """Only plain ASCII decimal digits are a timestamp; anything else is "stale_timestamp"."""
    assert reason(GOOD, timestamp=timestamp) == "stale_timestamp"


def test_the_error_carries_the_reason_and_a_short_message_quoting_no_header() -> None:
    """`.reason` is the wire reason; str() is a short sentence with none of the header values."""
    hostile = "<script>" + "A" * 500
    with pytest.raises(WebhookSignatureError) as refused:
        check(f"v1,{hostile}", webhook_id=hostile)
    assert refused.value.reason == "bad_signature"
    message = str(refused.value)
    assert message and len(message) < 100
    assert hostile not in message and "<script>" not in message


# Tolerance edges


def test_exactly_at_the_tolerance_is_accepted_in_the_past_and_the_future() -> None:
    """|now - timestamp| equal to the tolerance still passes, on both sides."""
    check(sign(KEY, ID, NOW - TOLERANCE, BODY), timestamp=str(NOW - TOLERANCE))
    check(sign(KEY, ID, NOW + TOLERANCE, BODY), timestamp=str(NOW + TOLERANCE))


@pytest.mark.parametrize("offset", [TOLERANCE + 1, -(TOLERANCE + 1), 10**9, -(10**9)])
def test_one_second_past_the_tolerance_is_stale_old_or_future(offset: int) -> None:
    """A validly signed push outside the window, before or after now, is "stale_timestamp"."""
    timestamp = NOW + offset
    signature = sign(KEY, ID, timestamp, BODY)
    assert reason(signature, timestamp=str(timestamp)) == "stale_timestamp"


def test_a_fraction_of_a_second_past_the_tolerance_is_stale() -> None:
    """`now` is a float: 300.5 s after the timestamp is past a 300 s tolerance."""
    assert reason(GOOD, now=NOW + TOLERANCE + 0.5) == "stale_timestamp"
    check(GOOD, now=NOW + TOLERANCE - 0.5)


# Hostile headers


def test_an_id_at_the_length_bound_passes_and_one_past_it_is_refused_even_if_signed() -> None:
    """Ids up to 256 characters verify; a longer one is refused without hashing it."""
    longest = "i" * MAX_ID_CHARS
    check(sign(KEY, longest, NOW, BODY), webhook_id=longest)
    too_long = "i" * (MAX_ID_CHARS + 1)
    signed = raw_signature(KEY, f"{too_long}.{NOW}.".encode() + BODY)
    assert reason(signed, webhook_id=too_long) == "bad_signature"
    assert reason(GOOD, webhook_id="i" * 1_000_000) == "bad_signature"


@pytest.mark.parametrize("webhook_id", ["msg_\u00e9t\u00e9", "msg_\u2603", "msg_\udc80", "a\nb"])
def test_a_non_ascii_or_control_character_id_is_refused_without_crashing(webhook_id: str) -> None:
    """An id the sender could not have signed as sent is refused, never an encoding error."""
    content = f"{webhook_id}.{NOW}.".encode(errors="surrogatepass") + BODY
    assert reason(raw_signature(KEY, content), webhook_id=webhook_id) == "bad_signature"


@pytest.mark.parametrize("webhook_id", ["msg_\u00e9", "x" * (MAX_ID_CHARS + 1), "", "a\tb"])
def test_sign_refuses_an_id_that_verify_would_refuse(webhook_id: str) -> None:
    """The signer cannot produce a push that could never verify."""
    with pytest.raises(ValueError, match="webhook id"):
        sign(KEY, webhook_id, NOW, BODY)


def test_only_the_first_sixteen_entries_are_examined() -> None:
    """A valid signature as the 16th entry passes; as the 17th it is never looked at."""
    decoy = sign(OTHER_KEY, ID, NOW, BODY)
    check(" ".join([decoy] * (MAX_SIGNATURE_ENTRIES - 1) + [GOOD]))
    assert reason(" ".join([decoy] * MAX_SIGNATURE_ENTRIES + [GOOD])) == "bad_signature"
    check(" ".join([GOOD] + [decoy] * (2 * MAX_SIGNATURE_ENTRIES)))  # the first of many


def test_a_signature_header_past_its_length_bound_is_refused_even_with_a_valid_entry() -> None:
    """A header longer than the bound is refused outright, however it starts."""
    padded = GOOD + " " + "v1a," + "A" * MAX_SIGNATURE_CHARS
    assert reason(padded) == "bad_signature"
    assert reason(GOOD + " " * MAX_SIGNATURE_CHARS) == "bad_signature"


def test_extra_spaces_between_entries_are_tolerated() -> None:
    """Runs of spaces around entries do not hide a valid one."""
    check(f"  v1,AAAA   {GOOD}  ")


def test_entries_of_other_versions_are_skipped_even_when_they_carry_the_right_bytes() -> None:
    """`v1a,` (ed25519), `v2,` and unversioned entries are never compared as HMACs."""
    digest = GOOD.removeprefix("v1,")
    others = (f"v1a,{digest}", f"v1:{digest}", f"v2,{digest}", digest, f",{digest}", f"V1,{digest}")
    for other in others:
        assert reason(other) == "bad_signature"
    check(f"v1a,{digest} {GOOD}")


@pytest.mark.parametrize(
    "signature",
    [
        "v1,",
        "v1",
        ",",
        "v1,!!!!",
        "v1,====",
        "v1,not base64 at all",
        "v1,\u00e9\u00e9\u00e9",
        "v1,\udc80",
        "v1,\x00\x00",
        GOOD.removesuffix("="),  # unpadded: not the canonical text senders emit
        GOOD[:8],  # the reference suite's "partial signature"
        GOOD + "A",
        "v1," + "A" * 10_000,
    ],
)
def test_garbage_signatures_are_bad_signatures_not_crashes(signature: str) -> None:
    """Malformed, non-ASCII, truncated or padded entries end in "bad_signature"."""
    assert reason(signature) == "bad_signature"


@given(
    webhook_id=st.one_of(st.none(), st.text(max_size=300)),
    timestamp=st.one_of(st.none(), st.text(max_size=30), st.integers().map(str)),
    signature=st.one_of(st.none(), st.text(max_size=300)),
    body=st.binary(max_size=256),
    now=st.floats(allow_nan=True, allow_infinity=True),
)
def test_arbitrary_headers_end_in_a_refusal_and_nothing_else(
    webhook_id: str | None, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    """Whatever the headers and clock hold, the only outcome is a WebhookSignatureError."""
    with pytest.raises(WebhookSignatureError) as refused:
        verify([KEY], webhook_id, timestamp, signature, body, now, TOLERANCE)
    assert refused.value.reason in {"unauthenticated", "stale_timestamp", "bad_signature"}


# Secrets


def test_decode_secret_returns_the_base64_decoding_after_the_prefix() -> None:
    """`whsec_` + base64: the key is the decoded bytes (24 for the reference secret)."""
    assert decode_secret(VECTOR_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert len(KEY) == 24


def test_sixteen_bytes_is_the_shortest_key_accepted() -> None:
    """A 16-byte key is accepted; 15 bytes is refused as too short."""
    assert decode_secret(SECRET_PREFIX + base64.b64encode(b"k" * 16).decode()) == b"k" * 16
    with pytest.raises(ValueError, match="at least 16 bytes"):
        decode_secret(SECRET_PREFIX + base64.b64encode(b"k" * 15).decode())


def secret_case(secret: str, problem: str, label: str) -> object:
    """A case labelled by its problem: test ids would otherwise print the secret."""
    return pytest.param(secret, problem, id=label)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        secret_case("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with", "no prefix"),
        secret_case("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with", "upper case"),
        secret_case(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with", "leading space"),
        secret_case("", "must start with", "empty"),
        secret_case("whsec_", "at least 16 bytes", "prefix only"),
        secret_case("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "not standard base64", "bad padding"),
        secret_case("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "not standard base64", "newline"),
        secret_case("whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw", "not standard base64", "space"),
        secret_case("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", "not standard base64", "urlsafe"),
        secret_case(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La\u00e9\u00e9", "not standard base64", "accents"
        ),
        secret_case("whsec_MTIz", "at least 16 bytes", "3 bytes"),
    ],
)
def test_decode_secret_names_the_problem_and_never_the_secret(secret: str, problem: str) -> None:
    """Each refusal says what is wrong, with no part of the secret in the message."""
    with pytest.raises(ValueError, match=problem) as refused:
        decode_secret(secret)
    message = str(refused.value)
    assert message in DECODE_MESSAGES
    body = secret.removeprefix(SECRET_PREFIX).strip()
    assert not body or body not in message
    # No chained decoder error either: a traceback shows nothing of the secret.
    assert refused.value.__cause__ is None
    assert refused.value.__context__ is None or refused.value.__suppress_context__


# Plain text, prefixed text and prefixed base64 of any length: every path of decode_secret.
candidate_secrets = st.one_of(
    st.text(max_size=80),
    st.text(max_size=80).map(lambda text: SECRET_PREFIX + text),
    st.binary(max_size=40).map(lambda key: SECRET_PREFIX + base64.b64encode(key).decode()),
)


@given(candidate_secrets)
def test_decode_secret_messages_never_depend_on_the_secret(secret: str) -> None:
    """Any refused text yields one of three fixed messages, so none can quote the secret."""
    try:
        key = decode_secret(secret)
    except ValueError as refused:
        assert str(refused) in DECODE_MESSAGES
        assert repr(refused) == f"ValueError({str(refused)!r})"
    else:
        assert len(key) >= 16


def test_new_secret_is_a_fresh_32_byte_whsec_secret() -> None:
    """A generated secret decodes to 32 bytes, and two are never the same."""
    first, second = new_secret(), new_secret()
    assert first.startswith(SECRET_PREFIX)
    assert len(decode_secret(first)) == 32
    assert first != second

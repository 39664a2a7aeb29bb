from __future__ import annotations

import pickle

import pytest

from agentwatch.sdk import AgentwatchError, WebhookVerificationError, WebhookVerifier, semconv

from .conftest import SECRET, sign, signed_headers

# The published test vector of the Standard Webhooks specification.
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(signature: str = EXPECTED, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        semconv.WEBHOOK_ID_HEADER: MSG_ID,
        semconv.WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        semconv.WEBHOOK_SIGNATURE_HEADER: signature,
    }


def verifier_at(now: float, secret: str = SECRET) -> WebhookVerifier:
    return WebhookVerifier(secret, clock=lambda: now)


def reason_of(verifier: WebhookVerifier, headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(headers, body)
    return info.value.reason


def test_spec_test_vector_verifies() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == EXPECTED  # the test's own signer agrees
    assert verifier_at(TIMESTAMP).verify(vector_headers(), PAYLOAD) == MSG_ID


def test_secret_without_prefix_is_accepted() -> None:
    verifier = verifier_at(TIMESTAMP, secret=SECRET.removeprefix("whsec_"))
    verifier.verify(vector_headers(), PAYLOAD)


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in vector_headers().items()}
    verifier_at(TIMESTAMP).verify(headers, PAYLOAD)


def test_stale_timestamp_is_rejected() -> None:
    assert reason_of(verifier_at(TIMESTAMP + 301), vector_headers(), PAYLOAD) == (
        "message timestamp too old"
    )


def test_timestamp_within_tolerance_is_accepted() -> None:
    verifier_at(TIMESTAMP + 299).verify(vector_headers(), PAYLOAD)
    verifier_at(TIMESTAMP - 299).verify(vector_headers(), PAYLOAD, check_replay=False)


def test_future_timestamp_beyond_tolerance_is_rejected() -> None:
    assert reason_of(verifier_at(TIMESTAMP - 301), vector_headers(), PAYLOAD) == (
        "message timestamp too new"
    )


def test_replayed_webhook_id_is_rejected() -> None:
    verifier = verifier_at(TIMESTAMP)
    verifier.verify(vector_headers(), PAYLOAD)
    assert reason_of(verifier, vector_headers(), PAYLOAD) == "replayed webhook-id"


def test_replay_check_can_be_left_to_the_caller() -> None:
    verifier = verifier_at(TIMESTAMP)
    for _ in range(2):
        verifier.verify(vector_headers(), PAYLOAD, check_replay=False)
    assert not verifier.seen(MSG_ID)
    assert verifier.remember(MSG_ID) is True
    assert verifier.seen(MSG_ID)
    assert verifier.remember(MSG_ID) is False


def test_replay_memory_is_bounded() -> None:
    verifier = WebhookVerifier(SECRET, max_remembered_ids=2)
    for webhook_id in ("a", "b", "c"):
        verifier.remember(webhook_id)
    assert not verifier.seen("a")
    assert verifier.seen("b")
    assert verifier.seen("c")


def test_tampered_body_is_rejected() -> None:
    reason = reason_of(verifier_at(TIMESTAMP), vector_headers(), b'{"test": 2432232315}')
    assert reason == "no matching signature"


def test_tampered_timestamp_is_rejected() -> None:
    headers = vector_headers(timestamp=TIMESTAMP + 1)
    assert reason_of(verifier_at(TIMESTAMP), headers, PAYLOAD) == "no matching signature"


def test_any_of_several_signatures_may_match() -> None:
    other = sign("whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==", MSG_ID, TIMESTAMP, PAYLOAD)
    headers = vector_headers(signature=f"v1,bm90IGEgc2lnbmF0dXJl {other} {EXPECTED}")
    verifier_at(TIMESTAMP).verify(headers, PAYLOAD)


def test_wrong_signature_version_is_not_accepted() -> None:
    headers = vector_headers(signature=EXPECTED.replace("v1,", "v2,"))
    assert reason_of(verifier_at(TIMESTAMP), headers, PAYLOAD) == "no matching signature"


@pytest.mark.parametrize(
    ("missing", "timestamp"),
    [(semconv.WEBHOOK_ID_HEADER, "1"), (semconv.WEBHOOK_SIGNATURE_HEADER, "1"), (None, "soon")],
)
def test_missing_or_malformed_headers_are_rejected(missing: str | None, timestamp: str) -> None:
    headers = vector_headers()
    headers[semconv.WEBHOOK_TIMESTAMP_HEADER] = timestamp
    if missing is not None:
        del headers[missing]
    reason_of(verifier_at(TIMESTAMP), headers, PAYLOAD)


def test_signed_headers_helper_round_trips() -> None:
    body = b'{"type": "breaker"}'
    verifier_at(1_000).verify(signed_headers(body, webhook_id="msg_1", timestamp=1_000), body)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not*base64", ""])
def test_bad_secret_fails_at_construction_without_echoing_it(secret: str) -> None:
    with pytest.raises(ValueError) as info:
        WebhookVerifier(secret)
    assert "not*base64" not in str(info.value)


def test_repr_hides_the_secret() -> None:
    assert "MfKQ" not in repr(WebhookVerifier(SECRET))


def test_error_is_an_agentwatch_error_and_pickles() -> None:
    error = WebhookVerificationError("no matching signature")
    assert isinstance(error, AgentwatchError)
    assert pickle.loads(pickle.dumps(error)).reason == "no matching signature"

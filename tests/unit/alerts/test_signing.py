from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwatch.alerts import new_webhook_id, sign, signed_headers
from agentwatch.sdk.semconv import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent Standard Webhooks check, as a receiver would do it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        part.startswith("v1,") and hmac.compare_digest(part[3:], expected)
        for part in headers["webhook-signature"].split(" ")
    )


def test_spec_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_secret_without_prefix_signs_the_same() -> None:
    bare = SPEC_SECRET.removeprefix("whsec_")
    assert sign(bare, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_signed_headers_carry_everything_and_verify() -> None:
    headers = signed_headers(SPEC_SECRET, SPEC_ID, SPEC_BODY, timestamp=SPEC_TS)
    assert headers[WEBHOOK_ID_HEADER] == SPEC_ID
    assert headers[WEBHOOK_TIMESTAMP_HEADER] == str(SPEC_TS)
    assert headers[WEBHOOK_SIGNATURE_HEADER] == SPEC_SIGNATURE
    assert headers["content-type"] == "application/json"
    assert verify(SPEC_SECRET, headers, SPEC_BODY)
    assert not verify(SPEC_SECRET, headers, SPEC_BODY + b" ")


@given(body=st.binary(max_size=512), ts=st.integers(min_value=0, max_value=2**40))
def test_any_body_verifies(body: bytes, ts: int) -> None:
    headers = signed_headers(SPEC_SECRET, "msg_x", body, timestamp=ts)
    assert verify(SPEC_SECRET, headers, body)


def test_webhook_ids_are_unique_and_url_safe() -> None:
    ids = {new_webhook_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"msg_[A-Za-z0-9_-]{26}", i) for i in ids)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!!"])
def test_bad_secret_is_rejected_without_echoing_it(secret: str) -> None:
    with pytest.raises(ValueError, match="secret") as info:
        sign(secret, SPEC_ID, SPEC_TS, SPEC_BODY)
    if secret.removeprefix("whsec_"):
        assert secret not in str(info.value)

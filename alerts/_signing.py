"""Standard Webhooks signing (https://www.standardwebhooks.com/) for outbound control webhooks.

The signature is ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), where the key
is the base64-decoded part of a ``whsec_``-prefixed secret. The SDK verifies the same scheme.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string

from agentwatch.sdk.semconv import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
_ID_LENGTH = 26


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a Standard Webhooks secret.

    Args:
        secret: ``whsec_`` + base64, or the bare base64 part.

    Raises:
        ValueError: The secret is empty or not base64. The message never contains the secret.
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    if not raw:
        raise ValueError("secret must be a non-empty 'whsec_' + base64 string")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret must be 'whsec_' + valid base64") from None
    if not key:
        raise ValueError("secret must decode to a non-empty key")
    return key


def _sign_with_key(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign one webhook message.

    Pure and thread-safe.

    Args:
        secret: ``whsec_`` + base64 (the prefix is optional).
        msg_id: The ``webhook-id``; identical across retries of one message.
        timestamp: The ``webhook-timestamp``, integer seconds since the Unix epoch.
        body: The exact bytes sent as the request body.

    Returns:
        ``"v1,<base64 signature>"``, the value of the ``webhook-signature`` header.

    Raises:
        ValueError: The secret is malformed.
    """
    return _sign_with_key(decode_secret(secret), msg_id, timestamp, body)


def new_webhook_id() -> str:
    """Return a fresh, unguessable message id: ``msg_`` + 26 URL-safe characters. Thread-safe."""
    return "msg_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def signed_headers(secret: str, msg_id: str, body: bytes, *, timestamp: int) -> dict[str, str]:
    """Return the request headers of one signed JSON webhook attempt.

    Pure and thread-safe.

    Args:
        secret: ``whsec_`` + base64 (the prefix is optional).
        msg_id: The ``webhook-id``.
        body: The exact request body.
        timestamp: Integer seconds since the Unix epoch (re-made on each retry is fine).

    Raises:
        ValueError: The secret is malformed.
    """
    return {
        WEBHOOK_ID_HEADER: msg_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }

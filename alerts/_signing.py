"""Standard Webhooks signing (https://www.standardwebhooks.com/) for outbound control webhooks.

The signature is ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), where the key
is the base64-decoded part of a ``whsec_``-prefixed secret. Both ends use the primitives of
``agentwatch.sdk.webhooks``, so signer and verifier cannot drift apart.
"""

from __future__ import annotations

import secrets
import string

from agentwatch.sdk.semconv import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)
from agentwatch.sdk.webhooks import decode_secret, signature

_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
_ID_LENGTH = 26


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
    return signature(decode_secret(secret), msg_id, timestamp, body)


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

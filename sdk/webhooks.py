"""Standard Webhooks primitives shared by both ends of a control webhook.

The service signs (``agentwatch.alerts``) and the agent verifies (:class:`WebhookVerifier`)
with these two functions, so the two sides cannot drift apart. Like ``semconv``, this module
imports only the standard library. Spec: https://www.standardwebhooks.com/.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

SECRET_PREFIX: Final = "whsec_"
SIGNATURE_VERSION: Final = "v1"


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_``-prefixed (or bare) base64 secret.

    Raises:
        ValueError: The secret is empty or not base64. The message never contains the secret.
    """
    encoded = secret.removeprefix(SECRET_PREFIX).strip()
    if not encoded:
        raise ValueError("webhook secret must be a non-empty 'whsec_' + base64 string")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not valid base64 (after the whsec_ prefix)") from None
    if not key:
        raise ValueError("webhook secret decodes to an empty key")
    return key


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Return ``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``. Pure."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION}," + base64.b64encode(mac).decode("ascii")

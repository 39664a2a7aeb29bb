"""Verification of Standard Webhooks signatures (https://www.standardwebhooks.com/)."""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from agentwatch.sdk import semconv
from agentwatch.sdk._errors import WebhookVerificationError
from agentwatch.sdk.webhooks import decode_secret, signature

DEFAULT_TOLERANCE_S = 300.0
DEFAULT_MAX_REMEMBERED_IDS = 10_000


class WebhookVerifier:
    """Verifies signed control webhooks and remembers their ids against replays.

    A message passes when one of the ``v1`` signatures in ``webhook-signature`` (a space-separated
    list, so senders can rotate keys) matches the HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
    under one of the accepted secrets (so receivers can rotate keys too), compared in constant
    time, and ``webhook-timestamp`` is within ``tolerance_s`` of ``clock()``.
    Replay protection is a bounded LRU memory of processed webhook ids: :meth:`verify` checks and
    records it by default; a receiver that answers duplicates idempotently instead passes
    ``check_replay=False`` and uses :meth:`seen` and :meth:`remember`.

    Thread-safe; never blocks beyond a short internal lock.

    Args:
        secret: ``whsec_`` + base64 of the key, or the bare base64; several accepted secrets as
            a sequence or one comma-separated string (``AGENTWATCH_WEBHOOK_SECRET``).
        tolerance_s: Largest accepted distance between the message timestamp and now.
        clock: Seconds since the epoch; injectable for tests.
        max_remembered_ids: Size of the replay memory; the oldest ids are forgotten first.

    Raises:
        ValueError: A bad secret, tolerance or memory size.
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        clock: Callable[[], float] = time.time,
        max_remembered_ids: int = DEFAULT_MAX_REMEMBERED_IDS,
    ) -> None:
        if not tolerance_s > 0:
            raise ValueError(f"tolerance_s must be > 0, got {tolerance_s!r}")
        if max_remembered_ids < 1:
            raise ValueError(f"max_remembered_ids must be >= 1, got {max_remembered_ids!r}")
        secrets = secret.split(",") if isinstance(secret, str) else list(secret)
        secrets = [item.strip() for item in secrets if item.strip()]
        if not secrets:
            raise ValueError("webhook secret must be a non-empty 'whsec_' + base64 string")
        self._keys = tuple(decode_secret(item) for item in secrets)
        self.tolerance_s = tolerance_s
        self.clock = clock
        self.max_remembered_ids = max_remembered_ids
        self._lock = threading.Lock()
        self._seen_ids: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tolerance_s={self.tolerance_s!r})"  # never the secret

    def verify(self, headers: Mapping[str, str], body: bytes, *, check_replay: bool = True) -> str:
        """Verify one message; return its webhook id.

        Args:
            headers: The request headers; names are matched case-insensitively.
            body: The raw request body, exactly as received.
            check_replay: Also reject an id seen before, and remember this one on success.

        Raises:
            WebhookVerificationError: Missing headers, a bad or stale timestamp, no matching
                signature, or (with ``check_replay``) a replayed id.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        webhook_id = lowered.get(semconv.WEBHOOK_ID_HEADER, "").strip()
        raw_timestamp = lowered.get(semconv.WEBHOOK_TIMESTAMP_HEADER, "").strip()
        signatures = lowered.get(semconv.WEBHOOK_SIGNATURE_HEADER, "").strip()
        if not webhook_id or not raw_timestamp or not signatures:
            raise WebhookVerificationError("missing webhook headers")
        try:
            timestamp = int(raw_timestamp)
        except ValueError:
            raise WebhookVerificationError("invalid webhook-timestamp") from None
        now = self.clock()
        if timestamp < now - self.tolerance_s:
            raise WebhookVerificationError("message timestamp too old")
        if timestamp > now + self.tolerance_s:
            raise WebhookVerificationError("message timestamp too new")
        expected = [
            signature(key, webhook_id, timestamp, body).encode("ascii") for key in self._keys
        ]
        if not self._any_matches(signatures, expected):
            raise WebhookVerificationError("no matching signature")
        if check_replay and not self.remember(webhook_id):
            raise WebhookVerificationError("replayed webhook-id")
        return webhook_id

    def seen(self, webhook_id: str) -> bool:
        """Whether ``webhook_id`` is in the replay memory."""
        with self._lock:
            return webhook_id in self._seen_ids

    def remember(self, webhook_id: str) -> bool:
        """Record ``webhook_id`` as processed; atomic test-and-set.

        Returns:
            True if the id was new, False if it had been seen (a replay or a retry).
        """
        with self._lock:
            if webhook_id in self._seen_ids:
                self._seen_ids.move_to_end(webhook_id)
                return False
            self._seen_ids[webhook_id] = None
            while len(self._seen_ids) > self.max_remembered_ids:
                self._seen_ids.popitem(last=False)
            return True

    @staticmethod
    def _any_matches(signatures: str, expected: list[bytes]) -> bool:
        matched = False
        for candidate in signatures.split():
            version, _, _value = candidate.partition(",")
            if version != "v1":
                continue
            encoded = candidate.encode("utf-8", "replace")
            # No early exit, so timing does not reveal which signature or key matched.
            for mac in expected:
                matched |= hmac.compare_digest(encoded, mac)
        return matched

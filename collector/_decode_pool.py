"""Decoding OTLP trace requests in worker processes, so the service uses more than one core.

The service is one Python process; decoding a request into exporter rows and normalizing its
events is most of its per-span work, and under one GIL it caps ingest at about one core. A
small pool of worker processes (started with ``spawn``: the service holds threads and an
embedded ClickHouse, which must not be forked) decodes instead, and the service process only
unpickles the result, about an eighth of the work. Results, errors included, come back as
values, so nothing depends on exceptions surviving a pickle.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from agentwatch.detectors import AgentEvent, EventKind

from ._normalize import heartbeat_fields, to_event
from ._otlp import (
    DecodedTraces,
    LimitExceeded,
    Limits,
    OtlpDecodeError,
    decode_request,
    request_to_rows,
)

logger = logging.getLogger(__name__)

# What ingest needs per row besides the row: its event, and for heartbeats (url, interval).
Observation = tuple[AgentEvent, str, float]


def observe_rows(rows: list[list[Any]]) -> list[Observation]:
    """Each row's event and, for heartbeats, its control URL and interval."""
    out: list[Observation] = []
    for row in rows:
        event = to_event(row)
        if event.kind is EventKind.HEARTBEAT:
            url, interval_s = heartbeat_fields(row)
            out.append((event, url, interval_s))
        else:
            out.append((event, "", 0.0))
    return out


def decode_traces(body: bytes, media: str, limits: Limits) -> tuple[Any, ...]:
    """In a worker: ``("ok", DecodedTraces, observations)`` or ``("error", message, reason)``."""
    try:
        decoded = request_to_rows(decode_request(body, media), limits)
    except LimitExceeded as exc:
        return ("error", str(exc), exc.reason)
    except OtlpDecodeError as exc:
        return ("error", str(exc), "malformed")
    return ("ok", decoded, observe_rows(decoded.rows))


def _ready() -> bool:
    return True


class DecoderPool:
    """Worker processes decoding trace requests.

    Args:
        workers: How many processes (at least 1).

    Thread-safe; ``decode`` blocks the calling (request) thread until its result is back.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        # Start the processes now, not on the first request (spawn imports take a second).
        for future in [self._pool.submit(_ready) for _ in range(workers)]:
            future.result(timeout=120)

    def decode(
        self, body: bytes, media: str, limits: Limits
    ) -> tuple[DecodedTraces, list[Observation]]:
        """Rows and observations of one request.

        Raises:
            LimitExceeded: Over a limit, or undecodable (reason ``malformed``).
        """
        result = self._pool.submit(decode_traces, body, media, limits).result()
        if result[0] == "error":
            raise LimitExceeded(result[1], result[2])
        return result[1], result[2]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

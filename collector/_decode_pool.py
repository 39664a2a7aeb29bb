"""Decoding OTLP trace requests in worker processes, so the service uses more than one core.

The service is one Python process; decoding a request into exporter rows, encoding them for
ClickHouse and normalizing their events is most of its per-span work, and under one GIL it caps
ingest at about one core. A small pool of worker processes (started with ``spawn``: the service
holds threads and an embedded ClickHouse, which must not be forked) does it instead and sends
back only what the service needs: the rows as one Native-format block (bytes, which cross a pipe
at memory speed) and each event's fields as a plain tuple (dataclasses pickle several times
slower). Results, errors included, come back as values, so nothing depends on exceptions
surviving a pickle.

Without workers (``decode_workers=0``) :func:`decode_here` does the same in the calling thread.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import operator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from agentwatch.detectors import AgentEvent, EventKind

from ._native import Block, NativeEncoder
from ._normalize import heartbeat_fields, to_event
from ._otlp import LimitExceeded, Limits, OtlpDecodeError, decode_request, request_to_rows

logger = logging.getLogger(__name__)

# What ingest needs per row besides the row: its event, and for heartbeats (url, interval).
Observation = tuple[AgentEvent, str, float]

_EVENT_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(AgentEvent)))


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    """One request, decoded: its accepted spans as a Native block, and what was rejected.

    Attributes:
        block: The ``otel_traces`` rows of the accepted spans.
        rejected: Spans refused (each with a reason in ``reasons``).
        errors: Up to five messages explaining refusals, for ``partial_success``.
        reasons: Refused spans by reason.
    """

    block: Block
    rejected: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)


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


def decode_here(
    request: Any, limits: Limits, encoder: NativeEncoder
) -> tuple[DecodedBlock, list[Observation]]:
    """Block and observations of a parsed request, in this thread."""
    decoded = request_to_rows(request, limits)
    block = encoder.encode(decoded.rows)
    result = DecodedBlock(block, decoded.rejected, decoded.errors, decoded.reasons)
    return result, observe_rows(decoded.rows)


# The worker's encoder, set once per process by the pool's initializer.
_encoder: NativeEncoder | None = None


def _init_worker(encoder: NativeEncoder) -> None:
    global _encoder
    _encoder = encoder


def decode_traces(body: bytes, media: str, limits: Limits) -> tuple[Any, ...]:
    """In a worker: ``("ok", DecodedBlock, [(event fields, url, interval)])`` or
    ``("error", message, reason)``."""
    assert _encoder is not None, "the pool's initializer sets the encoder"
    try:
        decoded, observations = decode_here(decode_request(body, media), limits, _encoder)
    except LimitExceeded as exc:
        return ("error", str(exc), exc.reason)
    except OtlpDecodeError as exc:
        return ("error", str(exc), "malformed")
    fields = _EVENT_FIELDS
    return ("ok", decoded, [(fields(event), url, iv) for event, url, iv in observations])


def _ready() -> bool:
    return _encoder is not None


class DecoderPool:
    """Worker processes decoding trace requests.

    Args:
        workers: How many processes (at least 1).
        encoder: Encodes the ``otel_traces`` rows (``Storage.encoder``); each worker gets a copy.

    Thread-safe; ``decode`` blocks the calling (request) thread until its result is back.
    """

    def __init__(self, workers: int, encoder: NativeEncoder) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(encoder,),
        )
        # Start the processes now, not on the first request (spawn imports take a second).
        for future in [self._pool.submit(_ready) for _ in range(workers)]:
            future.result(timeout=120)

    def decode(
        self, body: bytes, media: str, limits: Limits
    ) -> tuple[DecodedBlock, list[Observation]]:
        """Block and observations of one request.

        Raises:
            LimitExceeded: Over a limit, or undecodable (reason ``malformed``).
        """
        result = self._pool.submit(decode_traces, body, media, limits).result()
        if result[0] == "error":
            raise LimitExceeded(result[1], result[2])
        return result[1], [(AgentEvent(*values), url, iv) for values, url, iv in result[2]]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

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

import collections
import contextlib
import dataclasses
import gc
import logging
import multiprocessing
import operator
import socket
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from agentwatch.detectors import AgentEvent, EventKind

from ._native import Block, NativeEncoder
from ._normalize import heartbeat_fields, to_event
from ._otlp import LimitExceeded, Limits, OtlpDecodeError, decode_request, request_to_rows

logger = logging.getLogger(__name__)

JSON_MEDIA = "application/json"
PROTOBUF_TAG, JSON_TAG = b"p", b"j"

# What detection needs of a row: its event's fields (``AgentEvent(*fields)``), and for heartbeats
# the control URL and interval. Plain tuples: they pickle several times faster than dataclasses.
Observation = tuple[tuple[Any, ...], str, float]

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
    """Each row's event fields and, for heartbeats, its control URL and interval."""
    out: list[Observation] = []
    fields = _EVENT_FIELDS
    for row in rows:
        event = to_event(row)
        if event.kind is EventKind.HEARTBEAT:
            url, interval_s = heartbeat_fields(row)
            out.append((fields(event), url, interval_s))
        else:
            out.append((fields(event), "", 0.0))
    return out


def decode_here(
    request: Any, limits: Limits, encoder: NativeEncoder
) -> tuple[DecodedBlock, list[Observation]]:
    """Block and observations of a parsed request, in this thread."""
    decoded = request_to_rows(request, limits)
    block = encoder.encode(decoded.rows)
    result = DecodedBlock(block, decoded.rejected, decoded.errors, decoded.reasons)
    return result, observe_rows(decoded.rows)


# The worker's encoder, set once per process when it starts.
_encoder: NativeEncoder | None = None

_MEDIA_TAGS = {PROTOBUF_TAG: "application/x-protobuf", JSON_TAG: JSON_MEDIA}
# Socket buffers of a worker's connection: a request and its result (a few hundred KiB) fit
# without the writer waiting on the reader, whose process may be busy holding its GIL.
_BUFFER_BYTES = 4 << 20


def decode_traces(body: bytes, media: str, limits: Limits) -> tuple[Any, ...]:
    """In a worker: ``("ok", DecodedBlock, observations)`` or ``("error", message, reason)``."""
    assert _encoder is not None, "the worker sets its encoder first"
    try:
        decoded, observations = decode_here(decode_request(body, media), limits, _encoder)
    except LimitExceeded as exc:
        return ("error", str(exc), exc.reason)
    except OtlpDecodeError as exc:
        return ("error", str(exc), "malformed")
    return ("ok", decoded, observations)


def _serve(conn: Connection, encoder: NativeEncoder, limits: Limits) -> None:
    """A worker's loop: a media tag byte and a body in, a ``decode_traces`` result out."""
    global _encoder
    _encoder = encoder
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes, which would otherwise stall a request now and then.
    gc.freeze()
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the service closed its end
        conn.send(decode_traces(message[1:], _MEDIA_TAGS[message[:1]], limits))


class DecoderUnavailable(Exception):
    """A decoder process died while decoding (it is restarted); the request may be retried."""


class _Worker:
    """One decoder process and the service's end of its connection."""

    def __init__(self, encoder: NativeEncoder, limits: Limits) -> None:
        ours, theirs = socket.socketpair()
        for sock in (ours, theirs):
            with contextlib.suppress(OSError):  # capped by the kernel; the defaults still work
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER_BYTES)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER_BYTES)
        self.conn = Connection(ours.detach())
        child = Connection(theirs.detach())
        self.process: BaseProcess = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, encoder, limits), name="agentwatch-decoder", daemon=True
        )
        self.process.start()
        child.close()

    def ready(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            raise RuntimeError(f"decoder process did not start within {timeout_s:.0f} s")
        self.conn.recv()

    def call(self, tag: bytes, body: bytes) -> tuple[Any, ...]:
        self.conn.send_bytes(tag + body)
        result: tuple[Any, ...] = self.conn.recv()
        return result

    def stop(self, timeout_s: float) -> None:
        self.conn.close()  # the worker's recv ends
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout_s)


class _Turn:
    """A caller waiting for a worker; ``worker`` is set before ``ready``."""

    __slots__ = ("ready", "worker")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.worker: _Worker | None = None


class DecoderPool:
    """Worker processes decoding trace requests.

    Each request thread takes an idle worker, writes the body to it and reads the result back
    itself: no hand-off through a manager thread, so a busy service process adds no latency
    between a worker finishing and the request going on. A worker that dies is replaced, and
    its request answered as retryable (:class:`DecoderUnavailable`).

    Args:
        workers: How many processes (at least 1).
        encoder: Encodes the ``otel_traces`` rows (``Storage.encoder``); each worker gets a copy.
        limits: What a request and a span may carry (each worker applies them).

    Thread-safe; ``decode`` blocks the calling (request) thread until its result is back.
    """

    def __init__(self, workers: int, encoder: NativeEncoder, limits: Limits) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.encoder = encoder
        self.limits = limits
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._waiting: collections.deque[_Turn] = collections.deque()
        started = [_Worker(encoder, limits) for _ in range(workers)]
        for worker in started:  # spawn imports take a second or two: wait for all now
            worker.ready(120)
        self._idle.extend(started)

    @property
    def processes(self) -> list[BaseProcess]:
        """The worker processes (idle or busy)."""
        with self._lock:
            return [w.process for w in self._idle] + [w.process for w in self._busy]

    def _take(self) -> _Worker:
        """An idle worker; when all are busy, the longest-waiting caller gets the next one."""
        with self._lock:
            if self._idle and not self._waiting:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
            turn = _Turn()
            self._waiting.append(turn)
        turn.ready.wait()
        assert turn.worker is not None
        return turn.worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._waiting:  # straight to the oldest waiter: first come, first served
                turn = self._waiting.popleft()
                turn.worker = worker
                turn.ready.set()
                return
            self._busy.discard(worker)
            self._idle.append(worker)

    def decode(self, body: bytes, media: str) -> tuple[DecodedBlock, list[Observation]]:
        """Block and observations of one request.

        Raises:
            LimitExceeded: Over a limit, or undecodable (reason ``malformed``).
            DecoderUnavailable: The worker died; retry the request.
        """
        worker = self._take()
        try:
            result = worker.call(JSON_TAG if media == JSON_MEDIA else PROTOBUF_TAG, body)
        except (EOFError, OSError) as exc:
            logger.error("decoder process %s died (%s); starting another", worker.process.pid, exc)
            worker.stop(1.0)
            with self._lock:
                self._busy.discard(worker)
            worker = _Worker(self.encoder, self.limits)
            worker.ready(120)
            with self._lock:
                self._busy.add(worker)
            raise DecoderUnavailable("a decoder process died; retry the request") from exc
        finally:
            self._give_back(worker)
        if result[0] == "error":
            raise LimitExceeded(result[1], result[2])
        return result[1], result[2]

    def shutdown(self, timeout_s: float = 5.0) -> None:
        for _ in range(self.workers):
            self._take().stop(timeout_s)

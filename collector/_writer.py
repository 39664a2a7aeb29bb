"""A bounded, batching writer: rows in from request threads, large inserts out to ClickHouse.

Backpressure, not loss: ``submit`` refuses a batch (the receiver answers 429) when the pending
rows would exceed ``max_pending_rows``; while ClickHouse fails, the writer keeps its batch and
retries with capped backoff, so an outage delays data instead of dropping it. Pending rows live
in memory in this first cut: a crash loses them (the durable spool comes with the collector
issue).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._storage import Storage, StorageError

logger = logging.getLogger(__name__)


def insert_with_backoff(
    insert: Callable[[], None],
    *,
    table: str,
    rows: int,
    cond: threading.Condition,
    stopping: Callable[[], bool],
    backoff_s: float,
    max_backoff_s: float,
    on_insert: Callable[[int, float], None] | None = None,
    on_failure: Callable[[], None] | None = None,
) -> bool:
    """Run ``insert`` (of ``rows`` into ``table``) until ClickHouse takes it, waiting a doubling
    backoff between tries.

    The waits are on ``cond``, so a shutdown wakes them; ``stopping`` (read under ``cond``)
    ends the retries. Returns True once inserted, False when stopping came first (the caller
    keeps the data). An outage of ClickHouse delays data; it never drops it.
    """
    backoff = backoff_s
    while True:
        started = time.monotonic()
        try:
            insert()
        except StorageError as exc:
            if on_failure is not None:
                on_failure()
            logger.warning(
                "insert of %d rows into %s failed, retrying in %.1fs: %s",
                rows, table, backoff, exc,
            )  # fmt: skip
            with cond:
                if stopping():
                    return False
                cond.wait(backoff)
            backoff = min(backoff * 2, max_backoff_s)
            continue
        if on_insert is not None:
            on_insert(rows, time.monotonic() - started)
        return True


class TableWriter:
    """Batches rows for one table on a background thread.

    Args:
        storage: Where rows go.
        table: Target table.
        columns: Column names, the order of every submitted row.
        max_pending_rows: Bound on rows held in memory; ``submit`` refuses beyond it.
        max_batch_rows: Largest single insert.
        flush_interval_s: Longest a row waits before it is inserted.
        on_insert: Called with (rows inserted, seconds the insert took), for metrics.
        on_failure: Called after each failed insert attempt (it will be retried), for metrics.

    Thread-safe. ``submit`` never blocks on ClickHouse.
    """

    def __init__(
        self,
        storage: Storage,
        table: str,
        columns: Sequence[str],
        *,
        max_pending_rows: int = 200_000,
        max_batch_rows: int = 20_000,
        flush_interval_s: float = 0.2,
        retry_backoff_s: float = 0.5,
        max_retry_backoff_s: float = 10.0,
        on_insert: Callable[[int, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        if max_pending_rows <= 0:
            raise ValueError(f"max_pending_rows must be > 0, got {max_pending_rows}")
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.storage = storage
        self.table = table
        self.columns = tuple(columns)
        self.max_pending_rows = max_pending_rows
        self.max_batch_rows = max_batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry_backoff_s = retry_backoff_s
        self.max_retry_backoff_s = max_retry_backoff_s
        self.on_insert = on_insert
        self.on_failure = on_failure
        self._pending: collections.deque[Sequence[Any]] = collections.deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"writer-{table}", daemon=True)
        self.inserted_rows = 0
        self.failed_inserts = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def submit(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Queue rows; False (nothing queued) when that would exceed the memory bound."""
        if not rows:
            return True
        with self._cond:
            if self._stopping:
                return False
            if len(self._pending) + self._in_flight + len(rows) > self.max_pending_rows:
                return False
            self._pending.extend(rows)
            self._cond.notify_all()
        return True

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every submitted row is in ClickHouse; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Insert what is pending (up to the timeout), then stop the thread."""
        self.force_flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _take_batch(self) -> list[Sequence[Any]]:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if not self._pending:
                return []
            # Let a small batch grow for up to flush_interval_s: fewer, larger inserts.
            if len(self._pending) < self.max_batch_rows and not self._stopping:
                self._cond.wait(self.flush_interval_s)
            n = min(len(self._pending), self.max_batch_rows)
            batch = [self._pending.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            stored = insert_with_backoff(
                functools.partial(self.storage.insert, self.table, batch, self.columns),
                table=self.table,
                rows=len(batch),
                cond=self._cond,
                stopping=lambda: self._stopping,
                backoff_s=self.retry_backoff_s,
                max_backoff_s=self.max_retry_backoff_s,
                on_insert=self.on_insert,
                on_failure=self._failed,
            )
            with self._cond:
                if not stored:
                    # Shutting down with ClickHouse gone: put the rows back and leave.
                    self._pending.extendleft(reversed(batch))
                    self._in_flight = 0
                    self._cond.notify_all()
                    return
                self.inserted_rows += len(batch)
                self._in_flight = 0
                self._cond.notify_all()

    def _failed(self) -> None:
        self.failed_inserts += 1
        if self.on_failure is not None:
            self.on_failure()

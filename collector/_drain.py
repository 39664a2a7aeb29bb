"""Drains the spool into ``otel_traces``: large inserts, then a durable commit of the position.

Recent records wait in a bounded memory cache as Native-format blocks (``_native``), made where
the request was decoded, so the common path decodes each request once and the drain only joins
bytes; when the cache is full (ClickHouse is slow or down) records stay only on disk and are
decoded and encoded again when their turn comes. After a restart, records past the committed
position are replayed; one whose first span is already in ClickHouse is skipped, because an
insert is atomic: a crash between insert and commit then duplicates nothing.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._native import Block, NativeEncoder
from ._spool import Spool
from ._storage import Storage
from ._writer import insert_with_backoff

logger = logging.getLogger(__name__)

Row = list[Any]


class SpoolDrain:
    """The background thread moving spooled records into one ClickHouse table.

    Args:
        storage: Where rows go.
        spool: Where records wait.
        table: Target table; ``columns`` the order of every row.
        encoder: Rows to Native blocks of ``columns`` (``Storage.encoder``).
        decode: Record payload to rows (the same function ingest used).
        already_stored: Whether a row is in ClickHouse (replay dedup); checks one row.
        max_cached_rows: Bound on decoded rows kept in memory.
        max_batch_rows: Largest single insert.
        flush_interval_s: Longest a small batch waits to grow.

    Thread-safe: ``submit`` is called from request threads.
    """

    def __init__(
        self,
        storage: Storage,
        spool: Spool,
        table: str,
        columns: Sequence[str],
        encoder: NativeEncoder,
        decode: Callable[[bytes], list[Row]],
        already_stored: Callable[[Row], bool],
        *,
        max_cached_rows: int = 200_000,
        max_batch_rows: int = 50_000,
        flush_interval_s: float = 0.2,
        retry_backoff_s: float = 0.5,
        max_retry_backoff_s: float = 10.0,
        on_insert: Callable[[int, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.storage = storage
        self.spool = spool
        self.table = table
        self.columns = tuple(columns)
        self.encoder = encoder
        self.decode = decode
        self.already_stored = already_stored
        self.max_cached_rows = max_cached_rows
        self.max_batch_rows = max_batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry_backoff_s = retry_backoff_s
        self.max_retry_backoff_s = max_retry_backoff_s
        self.on_insert = on_insert
        self.on_failure = on_failure
        self._cache: collections.OrderedDict[int, Block] = collections.OrderedDict()
        self._cached_rows = 0
        self._next = spool.committed_seq + 1
        self._replay_until = spool.last_seq  # records a crash may have stored already
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"drain-{table}", daemon=True)
        self._flush_to = 0  # force_flush wants records up to here stored without delay
        self.inserted_rows = 0
        self.replayed_records = 0
        self.skipped_records = 0

    def start(self) -> None:
        if self._replay_until >= self._next:
            logger.info(
                "spool: replaying records %d..%d into %s",
                self._next,
                self._replay_until,
                self.table,
            )
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows cached in memory and not yet stored (records only on disk are not counted)."""
        with self._cond:
            return self._cached_rows

    @property
    def pending_records(self) -> int:
        return max(0, self.spool.last_seq - self.spool.committed_seq)

    def submit(self, seq: int, block: Block) -> None:
        """Offer the encoded rows of a spooled record; kept only if the cache has room."""
        with self._cond:
            if self._cached_rows + block.rows <= self.max_cached_rows:
                self._cache[seq] = block
                self._cached_rows += block.rows
            self._cond.notify_all()

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every record appended so far is in ClickHouse; False on timeout."""
        target = self.spool.last_seq
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flush_to = max(self._flush_to, target)  # no waiting for the batch to grow
            self._cond.notify_all()
            while self.spool.committed_seq < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Drain what is spooled (up to the timeout), then stop. Undrained records stay on disk."""
        self.force_flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    # --- the thread --------------------------------------------------------------------------
    def _collect(self) -> tuple[list[Block], int, int] | None:
        """The next batch of blocks, its rows and the last sequence number it covers; None to
        stop."""
        with self._cond:
            while self.spool.last_seq < self._next and not self._stopping:
                self._cond.wait()
            if self.spool.last_seq < self._next:
                return None
            # Let a small batch grow for up to flush_interval_s: each insert costs a fixed few
            # milliseconds and makes parts that ClickHouse merges later, so fewer is cheaper.
            deadline = time.monotonic() + self.flush_interval_s
            while (
                not self._stopping
                and self._flush_to < self._next
                and self._cached_rows < self.max_batch_rows
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        batch: list[Block] = []
        rows = 0
        last = self._next - 1
        while rows < self.max_batch_rows and last < self.spool.last_seq:
            seq = last + 1
            with self._cond:
                block = self._cache.pop(seq, None)
                if block is not None:
                    self._cached_rows -= block.rows
            if block is None:
                records = list(self.spool.read_from(seq, limit=64))
                if not records or records[0][0] != seq:
                    logger.error("spool: record %d is missing; skipping it", seq)
                    last = seq
                    continue
                for record_seq, payload in records:
                    if rows >= self.max_batch_rows:
                        break
                    rows += self._add(batch, record_seq, self.encoder.encode(self.decode(payload)))
                    last = record_seq
                continue
            rows += self._add(batch, seq, block)
            last = seq
        return batch, rows, last

    def _add(self, batch: list[Block], seq: int, block: Block) -> int:
        """Append ``block`` unless a replay finds it stored already; returns the rows added."""
        if not block.rows:
            return 0
        if seq <= self._replay_until:
            self.replayed_records += 1
            if self.already_stored(list(block.first)):
                self.skipped_records += 1
                return 0
        batch.append(block)
        return block.rows

    def _run(self) -> None:
        while True:
            collected = self._collect()
            if collected is None:
                return
            batch, rows, last = collected
            if batch and not self._insert(batch, rows):
                return  # stopping with ClickHouse down: the records stay in the spool
            self.spool.commit(last)
            with self._cond:
                self._next = last + 1
                self.inserted_rows += rows
                self._cond.notify_all()

    def _insert(self, batch: list[Block], rows: int) -> bool:
        # One statement for the whole batch: a Native stream is a sequence of blocks.
        data = b"".join(block.data for block in batch)
        return insert_with_backoff(
            functools.partial(self.storage.insert_native, self.table, self.columns, data),
            table=self.table,
            rows=rows,
            cond=self._cond,
            stopping=lambda: self._stopping,
            backoff_s=self.retry_backoff_s,
            max_backoff_s=self.max_retry_backoff_s,
            on_insert=self.on_insert,
            on_failure=self.on_failure,
        )

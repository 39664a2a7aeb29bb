"""The spool drain: batches grow for their interval, and a flush does not wait for it."""

from __future__ import annotations

from pathlib import Path

from agentwatch.collector import Storage, embedded_dsn
from agentwatch.collector._drain import SpoolDrain
from agentwatch.collector._records import decode_record
from agentwatch.collector._schema import TRACE_COLUMNS, TRACES_TABLE
from agentwatch.collector._spool import Spool
from tests.unit.collector.test_native import _row


def _drain(tmp_path: Path, flush_interval_s: float) -> tuple[SpoolDrain, list[int]]:
    storage = Storage(embedded_dsn(tmp_path / "ch"))
    storage.migrate()
    spool = Spool(tmp_path / "spool", segment_bytes=1 << 20, max_bytes=1 << 24)
    inserts: list[int] = []
    drain = SpoolDrain(
        storage,
        spool,
        TRACES_TABLE,
        TRACE_COLUMNS,
        storage.encoder(TRACES_TABLE, TRACE_COLUMNS),
        decode_record,
        lambda row: False,
        flush_interval_s=flush_interval_s,
        on_insert=lambda rows, seconds: inserts.append(rows),
    )
    drain.start()
    return drain, inserts


def _submit(drain: SpoolDrain, i: int) -> None:
    seq = drain.spool.append(b"p")  # the payload is only decoded on replay
    drain.submit(seq, drain.encoder.encode([_row(i)]))


def test_records_arriving_within_the_interval_go_in_one_insert(tmp_path: Path) -> None:
    drain, inserts = _drain(tmp_path, flush_interval_s=3.0)
    for i in range(5):  # each submit wakes the drain; none may cut the batch short
        _submit(drain, i)
    drain.shutdown(30)  # waits for the interval to pass, then for the insert
    drain.spool.close()
    drain.storage.close()
    assert inserts == [5]
    assert drain.spool.committed_seq == 5


def test_force_flush_stores_without_waiting_for_the_interval(tmp_path: Path) -> None:
    drain, inserts = _drain(tmp_path, flush_interval_s=3600.0)
    _submit(drain, 0)
    assert drain.force_flush(30)  # an hour's interval would time this out
    assert inserts == [1]
    _submit(drain, 1)
    assert drain.force_flush(30)
    assert inserts == [1, 1]
    drain.shutdown(30)
    drain.spool.close()
    drain.storage.close()

"""Native blocks: what the encoder writes is what ClickHouse stores."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from agentwatch.collector import Storage, embedded_dsn
from agentwatch.collector._schema import TRACE_COLUMNS, TRACES_TABLE
from agentwatch.collector._storage import StorageError


def _row(i: int) -> list[object]:
    return [
        1_764_000_000_000_000_000 + i, f"{i:032x}", f"{i:016x}", "", "", f"span-{i}",
        "Internal", "svc", {"service.name": "svc", "k": str(i)}, "scope", "1.0",
        {"gen_ai.tool.name": "search", "n": str(i)}, 1_000 + i, "Ok", "",
        [1_764_000_000_000_000_001], ["event"], [{"e": "1"}], [], [], [], [],
    ]  # fmt: skip


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    storage = Storage(embedded_dsn(tmp_path))
    storage.migrate()
    return storage


def test_blocks_concatenate_into_one_insert_and_round_trip(storage: Storage) -> None:
    encoder = pickle.loads(pickle.dumps(storage.encoder(TRACES_TABLE, TRACE_COLUMNS)))
    first, second = encoder.encode([_row(0), _row(1)]), encoder.encode([_row(2)])
    assert (first.rows, second.rows) == (2, 1)
    assert first.first[5] == "span-0"
    storage.insert_native(TRACES_TABLE, TRACE_COLUMNS, first.data + second.data)
    _, rows = storage.query(
        "SELECT SpanName, toUnixTimestamp64Nano(Timestamp), SpanAttributes['n'], Duration,"
        " ResourceAttributes['k'], Events.Name FROM otel_traces ORDER BY SpanName"
    )
    assert rows == [
        ("span-0", 1_764_000_000_000_000_000, "0", 1000, "0", ["event"]),
        ("span-1", 1_764_000_000_000_000_001, "1", 1001, "1", ["event"]),
        ("span-2", 1_764_000_000_000_000_002, "2", 1002, "2", ["event"]),
    ]


def test_a_value_of_the_wrong_type_names_its_column(storage: Storage) -> None:
    encoder = storage.encoder(TRACES_TABLE, TRACE_COLUMNS)
    row = _row(0)
    row[TRACE_COLUMNS.index("Duration")] = "long"
    with pytest.raises(ValueError, match=r"otel_traces\.Duration"):
        encoder.encode([row])


def test_an_encoder_needs_every_column_to_exist(storage: Storage) -> None:
    with pytest.raises(StorageError, match="NoSuchColumn"):
        storage.encoder(TRACES_TABLE, [*TRACE_COLUMNS, "NoSuchColumn"])


def test_no_rows_encode_to_an_empty_block_that_inserts_nothing(storage: Storage) -> None:
    empty = storage.encoder(TRACES_TABLE, TRACE_COLUMNS).encode([])
    assert (empty.rows, empty.data) == (0, b"")
    storage.insert_native(TRACES_TABLE, TRACE_COLUMNS, empty.data)
    assert storage.query("SELECT count() FROM otel_traces")[1] == [(0,)]

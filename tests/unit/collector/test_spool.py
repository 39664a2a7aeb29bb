"""The write-ahead spool: durability, torn tails, segments, budget."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.collector._spool import Spool, SpoolFull


def _payloads(spool: Spool, start: int) -> list[bytes]:
    return [payload for _, payload in spool.read_from(start)]


def test_records_survive_reopening_until_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64, max_bytes=10_000)
    seqs = [spool.append(f"record {i}".encode()) for i in range(10)]
    assert seqs == list(range(1, 11))
    spool.commit(4)
    spool.close()

    reopened = Spool(tmp_path, segment_bytes=64, max_bytes=10_000)
    assert reopened.committed_seq == 4
    assert reopened.last_seq == 10
    assert _payloads(reopened, 5) == [f"record {i}".encode() for i in range(4, 10)]
    assert reopened.append(b"next") == 11
    reopened.close()


def test_committed_segments_are_deleted_and_bytes_accounted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64, max_bytes=10_000)
    for _ in range(20):
        spool.append(b"x" * 30)
    segments_before = len(list(tmp_path.glob("segment-*.log")))
    assert segments_before > 3
    spool.commit(20)
    assert len(list(tmp_path.glob("segment-*.log"))) == 1  # only the active one remains
    assert spool.size_bytes == sum(p.stat().st_size for p in tmp_path.glob("segment-*.log"))
    spool.close()


def test_a_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"first")
    spool.append(b"second")
    spool.close()
    (segment,) = tmp_path.glob("segment-*.log")
    data = segment.read_bytes()
    segment.write_bytes(data[:-3])  # a crash in the middle of the second write
    reopened = Spool(tmp_path)
    assert _payloads(reopened, 1) == [b"first"]
    assert reopened.append(b"again") == 2
    assert _payloads(reopened, 1) == [b"first", b"again"]
    reopened.close()


def test_the_budget_refuses_and_commits_make_room(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100, max_bytes=200)
    appended = 0
    with pytest.raises(SpoolFull):
        while True:
            spool.append(b"y" * 40)
            appended += 1
    assert appended >= 3
    spool.commit(appended)
    assert spool.append(b"y" * 40) == appended + 1
    spool.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=50), st.integers(min_value=0, max_value=5)),
        max_size=40,
    )
)
def test_uncommitted_records_are_exactly_what_replays(
    tmp_path_factory: pytest.TempPathFactory, operations: list[bytes | int]
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, segment_bytes=80, max_bytes=1_000_000, fsync=False)
    written: list[bytes] = []
    committed = 0
    for op in operations:
        if isinstance(op, bytes):
            spool.append(op)
            written.append(op)
        else:  # commit op more records, as far as there are
            committed = min(len(written), committed + op)
            spool.commit(committed)
    spool.close()
    reopened = Spool(directory, segment_bytes=80, max_bytes=1_000_000, fsync=False)
    assert reopened.committed_seq == committed
    assert _payloads(reopened, committed + 1) == written[committed:]
    reopened.close()


def test_concurrent_appends_share_fsyncs_and_all_survive(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096, max_bytes=10_000_000)
    payloads = {f"t{t}-{i}".encode() for t in range(8) for i in range(50)}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(50):
                spool.append(f"t{t}-{i}".encode())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spool.close()
    assert errors == []
    reopened = Spool(tmp_path, segment_bytes=4096, max_bytes=10_000_000)
    records = list(reopened.read_from(1))
    assert [seq for seq, _ in records] == list(range(1, 401))  # dense, ordered, across segments
    assert {payload for _, payload in records} == payloads
    reopened.close()

"""The decoder pool hands workers out first come, first served."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agentwatch.collector import Storage, embedded_dsn
from agentwatch.collector._decode_pool import DecoderPool
from agentwatch.collector._otlp import DEFAULT_LIMITS
from agentwatch.collector._schema import TRACE_COLUMNS, TRACES_TABLE


def test_a_busy_worker_goes_to_the_longest_waiting_caller(tmp_path: Path) -> None:
    storage = Storage(embedded_dsn(tmp_path))
    storage.migrate()
    pool = DecoderPool(1, storage.encoder(TRACES_TABLE, TRACE_COLUMNS), DEFAULT_LIMITS)
    try:
        worker = pool._take()
        order: list[int] = []

        def wait_for_it(i: int) -> None:
            taken = pool._take()
            order.append(i)
            pool._give_back(taken)

        threads = []
        for i in range(4):
            thread = threading.Thread(target=wait_for_it, args=(i,))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 10
            while len(pool._waiting) < i + 1:  # queued in this order before the next starts
                assert time.monotonic() < deadline
                time.sleep(0.001)
        pool._give_back(worker)
        for thread in threads:
            thread.join(10)
        assert order == [0, 1, 2, 3]
    finally:
        pool.shutdown()
        storage.close()

"""The decoder pool hands workers out first come, first served."""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

from agentwatch.collector import Storage, embedded_dsn
from agentwatch.collector._decode_pool import DecoderPool
from agentwatch.collector._otlp import DEFAULT_LIMITS
from agentwatch.collector._schema import TRACE_COLUMNS, TRACES_TABLE


class QueueWatch(collections.deque[Any]):
    """The pool's deque of waiting callers, telling the test each time one is queued."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self._changed:
            super().append(item)
            self._changed.notify_all()

    def wait_for_length(self, n: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self) >= n, timeout_s)


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

        queued = pool._waiting = QueueWatch()  # our seam: the pool's queue of waiting callers
        threads = []
        for i in range(4):
            thread = threading.Thread(target=wait_for_it, args=(i,))
            thread.start()
            threads.append(thread)
            # Queued in this order before the next starts.
            assert queued.wait_for_length(i + 1, 10)
        pool._give_back(worker)
        for thread in threads:
            thread.join(10)
        assert order == [0, 1, 2, 3]
    finally:
        pool.shutdown()
        storage.close()

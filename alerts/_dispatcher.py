"""Background delivery: lanes of daemon worker threads, so slow Slack never delays control webhooks.

Jobs live in memory only: a crash loses what is queued. A durable on-disk outbox (DESIGN.md) comes
in a later issue and will sit in front of this.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

from ._delivery import Delivery

logger = logging.getLogger(__name__)

LANE_CONTROL: Final = "control"
LANE_NOTIFY: Final = "notify"

Job = Callable[[], Delivery]
OnResult = Callable[[Delivery], None]


class _Lane:
    """Sharded FIFO queues served by one thread each; a key always maps to the same shard."""

    def __init__(self, name: str, workers: int, max_queue: int) -> None:
        self.name = name
        self._max_queue = max_queue
        self._cond = threading.Condition()
        self._shards: list[deque[tuple[Job, OnResult | None]]] = [deque() for _ in range(workers)]
        self._queued = 0
        self._unfinished = 0  # queued plus running
        self._next_shard = 0
        self._accepting = True
        self._stopped = False
        self._threads = [
            threading.Thread(
                target=self._run, args=(i,), name=f"agentwatch-alerts-{name}-{i}", daemon=True
            )
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job, on_result: OnResult | None, key: str | None) -> bool:
        with self._cond:
            if not self._accepting or self._queued >= self._max_queue:
                return False
            if key is None:
                shard = self._next_shard
                self._next_shard = (shard + 1) % len(self._shards)
            else:
                shard = zlib.crc32(key.encode()) % len(self._shards)
            self._shards[shard].append((job, on_result))
            self._queued += 1
            self._unfinished += 1
            self._cond.notify_all()
            return True

    def _run(self, shard: int) -> None:
        queue = self._shards[shard]
        while True:
            with self._cond:
                while not queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job, on_result = queue.popleft()
                self._queued -= 1
            try:
                delivery = job()
                if on_result is not None:
                    on_result(delivery)
            except Exception:
                logger.exception("alerts %s job failed", self.name)
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self._unfinished == 0, timeout=max(0.0, deadline - time.monotonic())
            )

    def close_intake(self) -> None:
        with self._cond:
            self._accepting = False

    def stop(self, deadline: float) -> int:
        with self._cond:
            self._accepting = False
            self._stopped = True
            dropped = self._queued
            for queue in self._shards:
                queue.clear()
            self._unfinished -= dropped
            self._queued = 0
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return dropped


class Dispatcher:
    """Runs delivery jobs on background daemon threads, one independent lane per purpose.

    Lanes ``"control"`` and ``"notify"`` each have ``workers`` threads and their own bounded queue,
    so a slow Slack cannot hold up a breaker. Jobs submitted with the same ``key`` run in order on
    one thread (a per-agent order for control commands); jobs without a key are spread round-robin.

    Thread-safe; ``submit`` never blocks. In-memory only: queued jobs are lost on a crash (the
    durable outbox is a later issue).

    Args:
        workers: Threads per lane (>= 1).
        max_queue: Queued jobs per lane (>= 1) before ``submit`` refuses.
        lanes: Lane names.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        max_queue: int = 10_000,
        lanes: Iterable[str] = (LANE_CONTROL, LANE_NOTIFY),
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue!r}")
        names = list(lanes)
        if not names:
            raise ValueError("lanes must name at least one lane")
        self.workers = workers
        self.max_queue = max_queue
        self._lanes = {name: _Lane(name, workers, max_queue) for name in names}
        self._shutdown_lock = threading.Lock()
        self._is_shutdown = False

    def submit(
        self, lane: str, job: Job, on_result: OnResult | None = None, *, key: str | None = None
    ) -> bool:
        """Queue ``job`` on ``lane``; ``on_result`` gets its Delivery on the worker thread.

        Never blocks. Returns False, running nothing, when the lane's queue is full or the
        dispatcher is shut down: the caller counts the drop.

        Raises:
            KeyError: ``lane`` is not one of this dispatcher's lanes (a programming error).
        """
        return self._lanes[lane].submit(job, on_result, key)

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Block until every job submitted so far has finished; False when ``timeout_s`` ran out."""
        deadline = time.monotonic() + timeout_s
        return all(lane.wait_idle(deadline) for lane in self._lanes.values())

    def shutdown(self, timeout_s: float = 5.0) -> int:
        """Stop taking jobs, let queued ones finish for up to ``timeout_s``, then stop the workers.

        Blocks up to about ``timeout_s`` (more only when a running job outlives it; the threads are
        daemons, so they never hold up interpreter exit). Idempotent.

        Returns:
            How many queued jobs were dropped without running.
        """
        with self._shutdown_lock:
            if self._is_shutdown:
                return 0
            self._is_shutdown = True
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes.values():
            lane.close_intake()
        for lane in self._lanes.values():
            lane.wait_idle(deadline)
        dropped = sum(lane.stop(deadline) for lane in self._lanes.values())
        if dropped:
            logger.warning("alerts dispatcher dropped %d queued jobs at shutdown", dropped)
        return dropped

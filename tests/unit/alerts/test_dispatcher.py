"""Dispatcher lanes, bounded queues, ordering, flush and shutdown, synchronised with events."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentwatch.alerts import LANE_CONTROL, LANE_NOTIFY, Delivery, Dispatcher

WAIT_S = 5.0  # upper bound for event waits; tests finish long before it


def delivery(target: str = "test") -> Delivery:
    return Delivery(target, "msg_1", 1, 200, True, "", 0, 0)


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    d = Dispatcher(workers=1, max_queue=2)
    yield d
    d.shutdown(timeout_s=WAIT_S)


def blocker() -> tuple[Callable[[], Delivery], threading.Event, threading.Event]:
    started, release = threading.Event(), threading.Event()

    def job() -> Delivery:
        started.set()
        release.wait(WAIT_S)
        return delivery()

    return job, started, release


def test_runs_jobs_and_reports_results() -> None:
    d = Dispatcher()
    results: list[Delivery] = []
    lock = threading.Lock()

    def record(r: Delivery) -> None:
        with lock:
            results.append(r)

    for lane in (LANE_CONTROL, LANE_NOTIFY):
        for _ in range(10):
            assert d.submit(lane, functools.partial(delivery, lane), record)
    assert d.force_flush(WAIT_S)
    assert sorted(r.target for r in results) == ["control"] * 10 + ["notify"] * 10
    assert d.shutdown() == 0


def test_full_queue_refuses_without_blocking(dispatcher: Dispatcher) -> None:
    job, started, release = blocker()
    assert dispatcher.submit(LANE_NOTIFY, job)
    assert started.wait(WAIT_S)  # the worker holds it; the queue is empty again
    assert dispatcher.submit(LANE_NOTIFY, delivery)
    assert dispatcher.submit(LANE_NOTIFY, delivery)
    assert not dispatcher.submit(LANE_NOTIFY, delivery)
    assert dispatcher.submit(LANE_CONTROL, delivery)  # other lanes have their own queue
    release.set()
    assert dispatcher.force_flush(WAIT_S)
    assert dispatcher.submit(LANE_NOTIFY, delivery)


def test_slow_notify_does_not_delay_control(dispatcher: Dispatcher) -> None:
    job, started, release = blocker()
    dispatcher.submit(LANE_NOTIFY, job)
    assert started.wait(WAIT_S)
    done = threading.Event()
    dispatcher.submit(LANE_CONTROL, delivery, lambda r: done.set())
    assert done.wait(WAIT_S)
    release.set()


def test_force_flush_times_out_while_a_job_runs(dispatcher: Dispatcher) -> None:
    job, started, release = blocker()
    dispatcher.submit(LANE_CONTROL, job)
    assert started.wait(WAIT_S)
    assert not dispatcher.force_flush(0.01)
    release.set()
    assert dispatcher.force_flush(WAIT_S)


def test_same_key_keeps_order() -> None:
    d = Dispatcher(workers=4, max_queue=1000)
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def job(key: str, i: int) -> Callable[[], Delivery]:
        def run() -> Delivery:
            seen[key].append(i)
            return delivery()

        return run

    for i in range(200):
        for key in ("a", "b"):
            assert d.submit(LANE_CONTROL, job(key, i), key=key)
    assert d.force_flush(WAIT_S)
    d.shutdown()
    assert seen == {"a": list(range(200)), "b": list(range(200))}


def test_failing_job_and_callback_do_not_kill_the_worker(
    dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> Delivery:
        raise RuntimeError("boom")

    def bad_callback(r: Delivery) -> None:
        raise RuntimeError("callback")

    dispatcher.submit(LANE_CONTROL, boom)
    dispatcher.submit(LANE_CONTROL, delivery, bad_callback)
    assert dispatcher.force_flush(WAIT_S)
    done = threading.Event()
    dispatcher.submit(LANE_CONTROL, delivery, lambda r: done.set())
    assert done.wait(WAIT_S)
    assert caplog.text.count("job failed") == 2


def test_shutdown_drops_what_cannot_finish_and_refuses_more() -> None:
    d = Dispatcher(workers=1, max_queue=10)
    job, started, release = blocker()
    d.submit(LANE_CONTROL, job)
    assert started.wait(WAIT_S)
    ran = threading.Event()
    d.submit(LANE_CONTROL, delivery, lambda r: ran.set())
    # The running job outlives the drain timeout; the queued one is dropped.
    assert d.shutdown(timeout_s=0.01) == 1
    release.set()
    assert not ran.is_set()
    assert not d.submit(LANE_CONTROL, delivery)
    assert d.shutdown() == 0  # idempotent


def test_shutdown_lets_queued_jobs_finish() -> None:
    d = Dispatcher(workers=1)
    ran = threading.Event()
    d.submit(LANE_NOTIFY, delivery, lambda r: ran.set())
    assert d.shutdown(timeout_s=WAIT_S) == 0
    assert ran.is_set()


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"workers": 0}, "workers"), ({"max_queue": 0}, "max_queue")]
)
def test_validates(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Dispatcher(**kwargs)


def test_unknown_lane_is_a_programming_error(dispatcher: Dispatcher) -> None:
    with pytest.raises(KeyError):
        dispatcher.submit("pager", delivery)

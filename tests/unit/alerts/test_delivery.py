"""The retry core, on httpx.MockTransport and virtual time."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from agentwatch.alerts import Delivery, RetryPolicy, parse_retry_after, post_with_retry

from .conftest import FakeClock

Handler = Callable[[httpx.Request], httpx.Response]
MakeClient = Callable[[Handler], httpx.Client]

URL = "https://hooks.example.test/secret-path-T000/B000/XXXX"


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[httpx.Client] = []

    def make(handler: Handler) -> httpx.Client:
        client = httpx.Client(transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def scripted(*statuses: int, headers: dict[str, str] | None = None) -> Handler:
    remaining = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        status = remaining.pop(0) if remaining else 200
        return httpx.Response(status, headers=headers or {})

    return handler


def deliver(
    client: httpx.Client,
    clock: FakeClock,
    *,
    policy: RetryPolicy | None = None,
    shutdown: threading.Event | None = None,
    sleep: Callable[[float], object] | None = None,
) -> Delivery:
    return post_with_retry(
        client,
        URL,
        b"{}",
        lambda: {"content-type": "application/json"},
        target="test",
        webhook_id="msg_1",
        policy=policy or RetryPolicy(),
        sleep=sleep or clock.sleep,
        clock=clock.time,
        rng=random.Random(7),
        shutdown=shutdown or threading.Event(),
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"initial_backoff_s": -1}, "initial_backoff_s"),
        ({"factor": 0.5}, "factor"),
        ({"max_backoff_s": -1}, "max_backoff_s"),
        ({"deadline_s": 0}, "deadline_s"),
        ({"jitter": 1.0}, "jitter"),
        ({"attempt_timeout_s": 0}, "attempt_timeout_s"),
        ({"deadline_s": float("nan")}, "deadline_s"),
    ],
)
def test_policy_validates_eagerly(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)


def test_backoff_grows_within_jitter_and_caps() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, factor=1.5, max_backoff_s=2.0, jitter=0.2)
    rng = random.Random(1)
    for retry, base in [(1, 0.5), (2, 0.75), (3, 1.125), (4, 1.6875), (5, 2.0), (9, 2.0)]:
        wait = policy.backoff_s(retry, rng)
        assert base * 0.8 <= wait <= base * 1.2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 500, 501])
def test_other_errors_are_not_retried(
    make_client: MakeClient, clock: FakeClock, status: int
) -> None:
    result = deliver(make_client(scripted(status)), clock)
    assert (result.ok, result.attempts, result.status_code) == (False, 1, status)
    assert result.error == f"HTTP {status}"
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_are_retried(
    make_client: MakeClient, clock: FakeClock, status: int
) -> None:
    result = deliver(make_client(scripted(status)), clock)
    assert (result.ok, result.attempts, result.status_code) == (True, 2, 200)
    assert len(clock.sleeps) == 1


def test_retry_after_beyond_deadline_gives_up_without_waiting(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(scripted(429, headers={"Retry-After": "120"}))
    result = deliver(client, clock, policy=RetryPolicy(deadline_s=60))
    assert not result.ok
    assert result.attempts == 1
    assert "deadline" in result.error
    assert clock.sleeps == []


def test_shutdown_during_backoff_stops_retries(make_client: MakeClient, clock: FakeClock) -> None:
    shutdown = threading.Event()

    def sleep(seconds: float) -> None:
        shutdown.set()

    result = deliver(make_client(scripted(503, 503, 503)), clock, shutdown=shutdown, sleep=sleep)
    assert (result.ok, result.attempts) == (False, 1)
    assert "shutting down" in result.error


def test_transport_errors_never_leak_the_url(
    make_client: MakeClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {URL}", request=request)

    caplog.set_level(logging.DEBUG)
    result = deliver(make_client(handler), clock, policy=RetryPolicy(deadline_s=5))
    assert not result.ok
    assert result.attempts > 1
    assert result.status_code is None
    assert URL not in result.error and "<url>" in result.error
    assert URL not in caplog.text
    assert sum(clock.sleeps) < 5


def test_a_bad_url_is_a_result_not_an_exception(clock: FakeClock) -> None:
    with httpx.Client() as client:
        result = post_with_retry(
            client,
            "ftp://example.test/x",
            b"{}",
            dict,
            target="test",
            policy=RetryPolicy(),
            sleep=clock.sleep,
            clock=clock.time,
            rng=random.Random(0),
            shutdown=threading.Event(),
        )
    assert (result.ok, result.attempts) == (False, 1)
    assert "UnsupportedProtocol" in result.error


def test_result_times_come_from_the_clock(make_client: MakeClient, clock: FakeClock) -> None:
    start = clock.time_ns()
    result = deliver(make_client(scripted(503)), clock)
    assert result.started_ns == start
    assert result.finished_ns == clock.time_ns() > start


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("inf", None),
        ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0),  # 10 s after the fake clock's start
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, 1_700_000_000.0) == expected

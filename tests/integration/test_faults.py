"""Nothing lost: ClickHouse outages, kill -9, and bad requests amid good traffic.

Each test counts rows exactly: what was acknowledged is what ClickHouse holds, once.
"""

from __future__ import annotations

import gzip
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentwatch.collector import RunningService, Storage, StorageError, embedded_dsn
from agentwatch.sdk import semconv
from tests.support import local_settings

pytestmark = pytest.mark.integration
PROTOBUF = {"content-type": "application/x-protobuf"}


def _batch(batch_id: int, spans: int = 20) -> bytes:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key=semconv.SERVICE_NAME, value=AnyValue(string_value="load"))
    out = rs.scope_spans.add().spans
    for i in range(spans):
        out.add(
            trace_id=(batch_id + 1).to_bytes(16, "big"),
            span_id=(batch_id * 1000 + i + 1).to_bytes(8, "big"),
            name="execute_tool x",
            start_time_unix_nano=1_700_000_000_000_000_000 + batch_id * 1_000_000 + i,
            end_time_unix_nano=1_700_000_000_000_000_000 + batch_id * 1_000_000 + i + 10,
        )
    return request.SerializeToString()


def _stored(storage: Storage) -> tuple[int, int]:
    """(rows, distinct span ids) in otel_traces."""
    _, rows = storage.query("SELECT count(), uniqExact(SpanId) FROM otel_traces")
    return int(rows[0][0]), int(rows[0][1])


class FlakyStorage(Storage):
    """The real embedded storage, whose inserts fail while ``down`` is set (our own seam)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.down = threading.Event()
        self.refused = threading.Event()  # set once an insert failed during the outage

    def _check(self) -> None:
        if self.down.is_set():
            self.refused.set()
            raise StorageError("ClickHouse unavailable (injected)")

    def insert(self, table: str, data: Any, columns: Any) -> None:
        self._check()
        super().insert(table, data, columns)

    def insert_native(self, table: str, columns: Any, data: bytes) -> None:
        self._check()
        super().insert_native(table, columns, data)


def test_an_outage_under_load_delays_data_and_loses_none(data_dir: Path) -> None:
    storage = FlakyStorage(embedded_dsn(data_dir))
    settings = local_settings(data_dir, max_pending_rows=200)  # force the on-disk path too
    with RunningService(settings, storage=storage) as running, httpx.Client() as client:
        url = f"{running.otlp_endpoint}/v1/traces"
        acknowledged = 0
        for batch_id in range(60):
            if batch_id == 10:
                storage.down.set()
            if batch_id == 45:
                # End the outage only after the drain has really hit it.
                assert storage.refused.wait(30)
                storage.down.clear()
            response = client.post(url, content=_batch(batch_id), headers=PROTOBUF)
            assert response.status_code == 200
            acknowledged += 20
        assert running.service.flush(60)
        assert _stored(storage) == (acknowledged, acknowledged)
        assert running.service.metrics.insert_failures.labels(table="otel_traces")._value.get() > 0


def _logs(batch_id: int, records: int = 20) -> bytes:
    request = ExportLogsServiceRequest()
    out = request.resource_logs.add().scope_logs.add().log_records
    for i in range(records):
        out.add(
            time_unix_nano=1_700_000_000_000_000_000 + batch_id * 1_000 + i
        ).body.string_value = f"log {batch_id}/{i} " + "x" * 200
    return request.SerializeToString()


def test_traces_logs_and_metrics_share_one_spool_budget(data_dir: Path) -> None:
    storage = FlakyStorage(embedded_dsn(data_dir))
    settings = local_settings(data_dir, spool_max_bytes=64 * 1024)
    with RunningService(settings, storage=storage) as running, httpx.Client() as client:
        storage.down.set()
        logs_acknowledged = 0
        for batch_id in range(100):  # ClickHouse is down: the logs fill the shared budget
            response = client.post(
                f"{running.otlp_endpoint}/v1/logs", content=_logs(batch_id), headers=PROTOBUF
            )
            if response.status_code == 429:
                break
            assert response.status_code == 200
            logs_acknowledged += 20
        else:
            pytest.fail("the logs never met the 64 KiB budget")
        traces = client.post(
            f"{running.otlp_endpoint}/v1/traces", content=_batch(0, spans=200), headers=PROTOBUF
        )
        assert traces.status_code == 429  # no second budget for traces
        assert traces.headers["Retry-After"]
        storage.down.clear()
        assert running.service.flush(60)
        assert running.service.spool.size_bytes + running.service.signals.size_bytes <= 64 * 1024
        accepted = client.post(
            f"{running.otlp_endpoint}/v1/traces", content=_batch(1), headers=PROTOBUF
        )
        assert accepted.status_code == 200  # the budget is free again once stored
        assert running.service.flush(60)
        _, rows = storage.query("SELECT count() FROM otel_logs")
        assert rows[0][0] == logs_acknowledged
        assert _stored(storage) == (20, 20)


@pytest.fixture
def serve_command(data_dir: Path) -> Iterator[list[str]]:
    yield [
        sys.executable, "-m", "agentwatch.collector._cli", "serve", "--data-dir", str(data_dir),
        "--otlp-http-port", "0", "--otlp-grpc-port", "-1", "--api-port", "0",
    ]  # fmt: skip


def _start(command: list[str]) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``agentwatch serve``; returns the process, its OTLP/HTTP endpoint and API URL."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:  # drain stdout for the process's whole life, so prints never block
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    line = lines.get(timeout=60)  # "agentwatch serving: OTLP/HTTP http://... ..."
    assert "OTLP/HTTP" in line, line
    return process, line.split("OTLP/HTTP ", 1)[1].split()[0], line.split("API ", 1)[1].split()[0]


def test_kill_9_mid_load_keeps_every_acknowledged_span_exactly_once(
    data_dir: Path, serve_command: list[str]
) -> None:
    process, endpoint, _ = _start(serve_command)
    acknowledged: set[int] = set()
    with httpx.Client() as client:
        for batch_id in range(200):
            try:
                response = client.post(
                    f"{endpoint}/v1/traces", content=_batch(batch_id), headers=PROTOBUF
                )
            except httpx.TransportError:
                break
            if response.status_code == 200:
                acknowledged.add(batch_id)
            if batch_id == 120:
                # No goodbye: the drain batches for 200 ms, so the newest records are
                # acknowledged (fsynced in the spool) but not yet in ClickHouse.
                os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert len(acknowledged) >= 100

    # Restart on the same data: the spool replays; a clean stop drains it.
    process, _, api = _start(serve_command)
    stats = httpx.get(f"{api}/api/v1/stats").json()
    assert stats["spool_replayed_records"] + stats["spool_pending_records"] > 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    storage = Storage(embedded_dsn(data_dir))
    rows, distinct = _stored(storage)
    _, present = storage.query("SELECT DISTINCT TraceId FROM otel_traces")
    storage.close()
    assert {int(r[0], 16) - 1 for r in present} >= acknowledged  # every acknowledged batch is there
    assert rows == distinct  # and nothing twice


def test_bad_requests_do_not_disturb_good_traffic(data_dir: Path) -> None:
    settings = local_settings(data_dir, max_request_bytes=256 * 1024)
    with RunningService(settings) as running:
        url = f"{running.otlp_endpoint}/v1/traces"
        bad_statuses: list[int] = []
        good_statuses: list[int] = []

        def bad() -> None:
            with httpx.Client() as client:
                for _ in range(10):
                    for body, headers in (
                        (b"\x00garbage\xff", PROTOBUF),
                        (b"x" * 300_000, PROTOBUF),
                        (
                            gzip.compress(b"\0" * 5_000_000),
                            {**PROTOBUF, "content-encoding": "gzip"},
                        ),
                    ):
                        bad_statuses.append(
                            client.post(url, content=body, headers=headers).status_code
                        )

        def good() -> None:
            with httpx.Client() as client:
                for batch_id in range(40):
                    response = client.post(url, content=_batch(batch_id), headers=PROTOBUF)
                    good_statuses.append(response.status_code)

        threads = [threading.Thread(target=bad), threading.Thread(target=good)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert time.monotonic() - started < 120
        assert good_statuses == [200] * 40
        assert sorted(set(bad_statuses)) == [400, 413]
        assert running.service.flush(30)
        assert _stored(running.service.storage) == (800, 800)

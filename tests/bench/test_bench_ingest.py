"""Sustained ingest (issue 3): OTLP/HTTP protobuf, 512-span batches from concurrent senders,
the real normalization, spool, ClickHouse inserts and every detector on.

The service runs as its own process (``agentwatch serve``), as in production; senders are
threads of the benchmark process posting pre-encoded bodies. ``BENCH_SECONDS``
(default 60) sets the sending time. Prints ``BENCH`` lines; asserts nothing about figures.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from agentwatch.collector import Storage, embedded_dsn

from .test_bench_spine import _request

SENDERS = 4
BATCH = 512


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    command = [
        sys.executable, "-m", "agentwatch.collector._cli", "serve", "--data-dir", str(data_dir),
        "--otlp-http-port", "0", "--otlp-grpc-port", "-1", "--api-port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    line = lines.get(timeout=60)
    otlp = line.split("OTLP/HTTP ", 1)[1].split()[0]
    api = line.split("API ", 1)[1].split()[0]
    return process, otlp, api


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def test_bench_sustained_ingest(tmp_path: Path) -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "60"))
    # 16 distinct bodies from 64 agents each, so detectors see many agents and no loops.
    bodies = [_request(BATCH, 64, seed=i).SerializeToString() for i in range(16)]
    process, otlp, api = _serve(tmp_path / "data")
    latencies: list[float] = []
    refused = 0
    lock = threading.Lock()
    stop = threading.Event()

    def sender(index: int) -> None:
        nonlocal refused
        headers = {"content-type": "application/x-protobuf"}
        with httpx.Client(timeout=30) as client:
            i = index
            while not stop.is_set():
                body = bodies[i % len(bodies)]
                i += SENDERS
                started = time.perf_counter()
                response = client.post(f"{otlp}/v1/traces", content=body, headers=headers)
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        refused += 1

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)  # the load runs for a fixed time: this is the measurement window
    stop.set()
    for thread in threads:
        thread.join(60)
    sent_s = time.perf_counter() - started
    acknowledged = len(latencies) * BATCH
    stats = httpx.get(f"{api}/api/v1/stats").json()
    process.send_signal(signal.SIGTERM)  # a clean stop drains the spool into ClickHouse
    process.wait(600)
    drained_s = time.perf_counter() - started
    peak_rss = _peak_rss_bytes(process.pid) if Path(f"/proc/{process.pid}").exists() else 0

    storage = Storage(embedded_dsn(tmp_path / "data"))
    _, rows = storage.query("SELECT count() FROM otel_traces")
    _, parts = storage.query(
        "SELECT sum(data_compressed_bytes), sum(rows) FROM system.parts"
        " WHERE table = 'otel_traces' AND active"
    )
    storage.close()
    stored = int(rows[0][0])
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
    bytes_per_span = int(parts[0][0]) / max(1, int(parts[0][1]))
    print(
        f"\nBENCH ingest_sustained: {acknowledged / sent_s:,.0f} spans/s acknowledged over "
        f"{sent_s:.0f} s ({SENDERS} senders, {BATCH}-span protobuf batches), "
        f"{stored / drained_s:,.0f} spans/s stored end to end incl. drain; "
        f"ack latency p50 {p50:.0f} ms, p99 {p99:.0f} ms; refused {refused}; "
        f"stored {stored:,} of {acknowledged:,} acknowledged; "
        f"{bytes_per_span:.0f} bytes/span on disk; anomalies {stats.get('anomalies')}"
    )
    if peak_rss:
        print(f"BENCH ingest_peak_rss: {peak_rss / 2**20:,.0f} MiB")

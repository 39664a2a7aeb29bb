"""Sustained ingest (issue 3): OTLP/HTTP protobuf, 512-span batches from concurrent senders,
the real normalization, spool, ClickHouse inserts and every detector on.

The service runs as its own process (``agentwatch serve``), as in production; senders are
threads of the benchmark process posting pre-encoded bodies. ``BENCH_SECONDS``
(default 60) sets the sending time. Prints ``BENCH`` lines; asserts nothing about figures.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from agentwatch.collector import Storage, embedded_dsn, request_to_rows
from agentwatch.collector._schema import TRACE_COLUMNS

from .test_bench_spine import _request

SENDERS = 4
BATCH = 512


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    return _serve_with_env(data_dir, {})


def _serve_with_env(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str, str]:
    """``agentwatch serve`` as its own process; returns it, its OTLP/HTTP and API URLs."""
    command = [
        sys.executable, "-m", "agentwatch.collector._cli", "serve", "--data-dir", str(data_dir),
        "--otlp-http-port", "0", "--otlp-grpc-port", "-1", "--api-port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
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
    """Peak resident memory of the service and its decoder processes (the sum of each one's
    peak: an upper bound of their peak together)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    total = 0
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


_WRK_SCRIPT = """
local bodies = {}
init = function(args)
  for i, path in ipairs(args) do
    local f = io.open(path, "rb"); bodies[i] = f:read("*all"); f:close()
  end
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/traces",
    {["Content-Type"] = "application/x-protobuf"}, bodies[(n % #bodies) + 1])
end
"""


def _load_with_wrk(
    otlp: str, bodies: list[bytes], seconds: float, tmp: Path
) -> tuple[int, float, float]:
    """(acknowledged requests, p50 ms, p99 ms) from wrk: a C load generator, so the senders
    take little of the 2 cores the service needs."""
    paths = []
    for i, body in enumerate(bodies):
        path = tmp / f"body{i}.bin"
        path.write_bytes(body)
        paths.append(str(path))
    script = tmp / "post.lua"
    script.write_text(_WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(SENDERS), "-d", f"{int(seconds)}s", "--latency",
         "-s", str(script), f"{otlp}/v1/traces", "--", *paths],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    requests = int(out.split(" requests in ")[0].split()[-1])
    non_2xx = int(out.split("Non-2xx or 3xx responses:")[1].split()[0]) if "Non-2xx" in out else 0

    def percentile(label: str) -> float:
        value = out.split(f"{label}%")[1].split()[0]
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        unit = "".join(c for c in value if c.isalpha())
        return float(value[: -len(unit)]) * scale[unit]

    return requests - non_2xx, percentile("50"), percentile("99")


def _load_with_httpx(otlp: str, bodies: list[bytes], seconds: float) -> tuple[int, float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(index: int) -> None:
        headers = {"content-type": "application/x-protobuf"}
        with httpx.Client(timeout=30) as client:
            i = index
            while not stop.is_set():
                started = time.perf_counter()
                response = client.post(
                    f"{otlp}/v1/traces", content=bodies[i % len(bodies)], headers=headers
                )
                i += SENDERS
                if response.status_code == 200:
                    with lock:
                        latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)  # the load runs for a fixed time: this is the measurement window
    stop.set()
    for thread in threads:
        thread.join(60)
    latencies.sort()
    if not latencies:
        return 0, 0.0, 0.0
    return (
        len(latencies),
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


def test_bench_sustained_ingest(tmp_path: Path) -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "60"))
    # 16 distinct bodies from 64 agents each, so detectors see many agents and no loops.
    bodies = [_request(BATCH, 64, seed=i).SerializeToString() for i in range(16)]
    process, otlp, api = _serve(tmp_path / "data")
    started = time.perf_counter()
    if shutil.which("wrk"):
        sender = "wrk"
        requests, p50, p99 = _load_with_wrk(otlp, bodies, seconds, tmp_path)
    else:
        sender = "httpx threads (install wrk for a lighter load generator)"
        requests, p50, p99 = _load_with_httpx(otlp, bodies, seconds)
    sent_s = time.perf_counter() - started
    acknowledged = requests * BATCH
    stats = httpx.get(f"{api}/api/v1/stats").json()
    peak_rss = _peak_rss_bytes(process.pid)
    process.send_signal(signal.SIGTERM)  # a clean stop drains the spool into ClickHouse
    process.wait(600)
    drained_s = time.perf_counter() - started

    storage = Storage(embedded_dsn(tmp_path / "data"))
    _, rows = storage.query("SELECT count() FROM otel_traces")
    storage.close()
    stored = int(rows[0][0])
    print(
        f"\nBENCH ingest_sustained: {acknowledged / sent_s:,.0f} spans/s acknowledged over "
        f"{sent_s:.0f} s ({SENDERS} connections via {sender}, {BATCH}-span protobuf batches), "
        f"{stored / drained_s:,.0f} spans/s stored end to end incl. drain; "
        f"ack latency p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
        f"stored {stored:,} of {acknowledged:,} acknowledged (wrk does not count responses still "
        f"in flight when time is up); anomalies {stats.get('anomalies')}, events not scored "
        f"(detection queue full) {stats.get('detection_events_dropped')}"
    )
    print(f"BENCH ingest_peak_rss: {peak_rss / 2**20:,.0f} MiB (service and decoder processes)")


def test_bench_storage_bytes_per_span(tmp_path: Path) -> None:
    """On-disk size of realistic, distinct action spans after merges (the exporter's codecs)."""
    storage = Storage(embedded_dsn(tmp_path / "d"))
    storage.migrate()
    rows = []
    for seed in range(100):
        rows += request_to_rows(_request(2_000, 50, seed=seed)).rows
    storage.insert("otel_traces", rows, TRACE_COLUMNS)
    storage.command("OPTIMIZE TABLE otel_traces FINAL")
    _, parts = storage.query(
        "SELECT sum(data_compressed_bytes), sum(rows) FROM system.parts"
        " WHERE table = 'otel_traces' AND active"
    )
    storage.close()
    print(f"\nBENCH storage_bytes_per_span: {int(parts[0][0]) / int(parts[0][1]):.0f} bytes "
          f"({int(parts[0][1]):,} distinct action spans, 4 attributes each)")  # fmt: skip

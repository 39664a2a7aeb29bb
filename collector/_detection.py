"""Detection: where the service's anomalies come from, apart from what is done about them.

Two sources, both over the agent registry. The ``detect`` thread takes the normalized events
that ``Service.ingest`` queues, records each agent in the registry and scores the events with
the per-agent detectors (``DetectorPipeline``). The service's maintenance tick calls
``check_liveness``, which judges silence: missed heartbeats per agent and each cohort's agent
count (``_liveness``). Every anomaly goes to one callback; the service records it and hands it
to the response. The detectors' learned state is loaded at construction and saved at shutdown
and every few minutes (``detector_snapshot_interval_s``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwatch.detectors import AgentEvent, Anomaly, DetectorPipeline, EventKind
from agentwatch.sdk import semconv

from ._decode_pool import Observation
from ._liveness import AgentCount, missed_heartbeat
from ._registry import AgentRegistry
from ._response import Response
from ._settings import ServiceSettings

logger = logging.getLogger(__name__)
# The maintenance tick saves the agent registry this often (and shutdown does), so that a crash
# loses at most this much of it.
AGENTS_SAVE_INTERVAL_NS = 60 * 1_000_000_000


class Detection:
    """The ``detect`` thread and the liveness checks of one service.

    Args:
        settings: The service's; ``heartbeat_misses`` and ``detector_snapshot_path`` (learned
            state restored from it here when the file exists, saved to it at shutdown and by
            the maintenance tick every ``detector_snapshot_interval_s``, so that a crash loses
            at most that much learning; the agent registry likewise from and to
            ``<detector_snapshot_path>.agents.json``, saved every minute as well, so that an
            agent that died while the service was down or after it crashed is still found
            lost).
        clock: Wall clock in ns for the detectors' detection times.
        registry: Agents, observed from every event; the liveness checks read it.
        response: Told each agent's control URL, its normal actions and its lost heartbeats.
        on_anomaly: Called with each anomaly, on the thread that found it.
        on_dropped: Called with the number of events not scored because the backlog was full.
        lock: Guards the count of queued events; the service passes its own lock.

    ``pipeline`` holds the per-agent detectors; replace it only before traffic arrives.

    Thread-safe: ``submit`` is called from request threads, ``check_liveness`` from the
    maintenance thread alone. The detectors run on the ``detect`` thread under
    ``pipeline_lock``, which snapshot and restore take as well.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        clock: Callable[[], int],
        registry: AgentRegistry,
        response: Response,
        on_anomaly: Callable[[Anomaly], None],
        on_dropped: Callable[[int], None],
        lock: threading.Lock,
    ) -> None:
        self.heartbeat_misses = settings.heartbeat_misses
        self.snapshot_path = settings.detector_snapshot_path
        self.snapshot_interval_ns = round(settings.detector_snapshot_interval_s * 1e9)
        self._snapshot_saved_ns: int | None = None  # when the tick last saved (None: not yet)
        self.pipeline = DetectorPipeline(clock=clock, session_patterns=settings.session_patterns)
        self.pipeline_lock = threading.Lock()  # the detect thread vs. snapshot and restore
        path = self.snapshot_path
        if path is not None and path.exists():
            restored = self.pipeline.restore(path.read_bytes(), merge=False)
            logger.info("restored detector state of %d agents from %s", restored, path)
        self.registry = registry
        self._agents_saved_ns = 0  # when check_liveness last saved the registry
        self._agents_file = threading.Lock()  # the maintenance tick vs. shutdown
        self._snapshot_file = threading.Lock()  # likewise, for the detector snapshot
        agents = self._agents_path()
        if agents is not None and agents.exists():
            try:
                restored = registry.restore(json.loads(agents.read_text()))
            except ValueError as e:  # (JSONDecodeError is one)
                raise ValueError(
                    f"{agents}: {e}; move the file away to start without the saved agents"
                ) from None
            logger.info("restored %d agents' liveness from %s", restored, agents)
        self.response = response
        self.on_anomaly = on_anomaly
        self.on_dropped = on_dropped
        self._lock = lock
        self._agent_count = AgentCount(self.heartbeat_misses)
        # Bounded by events, not batches (see ``submit``); None stops the thread.
        self._events: queue.Queue[list[Observation] | None] = queue.Queue()
        self._queued_events = 0
        self._thread = threading.Thread(target=self._detect_loop, name="detect", daemon=True)

    def start(self) -> None:
        """Start the ``detect`` thread."""
        self._thread.start()

    def submit(self, observations: list[Observation], max_events: int) -> None:
        """Queue one request's events for scoring, without blocking.

        Events that would put more than ``max_events`` in the backlog are dropped instead:
        their spans are stored all the same, only their detection is skipped.
        """
        with self._lock:
            full = self._queued_events + len(observations) > max_events
            if not full:
                self._queued_events += len(observations)
        if full:
            self.on_dropped(len(observations))  # counted, never silent
            logger.warning("detection queue full: %d events not scored", len(observations))
        else:
            self._events.put_nowait(observations)

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every queued event is scored; False on timeout."""
        # queue.Queue's own condition, notified as task_done() empties it: no polling.
        with self._events.all_tasks_done:
            return self._events.all_tasks_done.wait_for(
                lambda: not self._events.unfinished_tasks, timeout_s
            )

    def shutdown(self, timeout_s: float) -> None:
        """Score what is queued, stop the ``detect`` thread, then save the learned state.

        Waits up to ``timeout_s`` for the thread, then blocks on writing the snapshot.
        """
        self._events.put(None)
        self._thread.join(timeout_s)
        self._write_snapshot()

    def _detect_loop(self) -> None:
        while True:
            batch = self._events.get()
            try:
                if batch is None:
                    return
                with self.pipeline_lock:
                    self._detect(batch)
            finally:
                if batch:
                    with self._lock:
                        self._queued_events -= len(batch)
                self._events.task_done()

    def _detect(self, batch: list[Observation]) -> None:
        for observation in batch:
            try:
                self._detect_one(*observation)
            except Exception:  # a bug on one event must not stop detection of every agent
                logger.exception("detection failed on an event %r", observation[0][:4])

    def _detect_one(self, fields: tuple[Any, ...], url: str, interval_s: float) -> None:
        # Compiled (setup.py), AgentEvent checks its fields' types: a bad one raises here.
        event = AgentEvent(*fields)
        self.registry.observe(
            event.agent,
            event.service,
            event.ts_ns,
            heartbeat=event.kind is EventKind.HEARTBEAT,
            control_url=url,
            interval_s=interval_s,
            status=event.key if event.kind is EventKind.HEARTBEAT else "",
        )
        if url:  # the kill switch and failover need it before any anomaly
            self.response.remediator.set_control_url(event.agent, url)
        anomalies = self.pipeline.process(event)
        for anomaly in anomalies:
            self.on_anomaly(anomaly)
        if not anomalies and event.kind is EventKind.ACTION:
            self.response.observe_action(event.agent)

    def check_liveness(self, now_ns: int) -> None:
        """Report agents whose heartbeats stopped and cohorts that lost several at once.

        Called once a tick by the maintenance thread, never concurrently.
        """
        agents = self.registry.all()
        for info in agents:
            if info.status == semconv.STATUS_STOPPED:
                continue  # it said goodbye: its silence is no loss
            anomaly = missed_heartbeat(info, now_ns, self.heartbeat_misses)
            if anomaly is not None and self.registry.mark_lost(info.agent):
                self.on_anomaly(anomaly)
                self.response.remediator.heartbeat_lost(info.agent)
        for anomaly in self._agent_count.tick(agents, now_ns):
            self.on_anomaly(anomaly)  # a cohort's: the policy issues no command
        if self._snapshot_saved_ns is None:
            self._snapshot_saved_ns = now_ns  # the first tick: the interval starts now
        elif self.snapshot_interval_ns and (
            now_ns - self._snapshot_saved_ns >= self.snapshot_interval_ns
        ):
            self._snapshot_saved_ns = now_ns  # a crash loses at most this much learning
            self._agents_saved_ns = now_ns
            self._write_snapshot()  # and the registry beside it
        if now_ns - self._agents_saved_ns >= AGENTS_SAVE_INTERVAL_NS:
            self._agents_saved_ns = now_ns  # a crash loses at most this much of the registry
            self._write_agents()

    # --- learned state -----------------------------------------------------------------------
    def snapshot(self, agents: set[str] | None = None) -> bytes:
        """The detectors' learned state (of ``agents``, default all).

        Blocks while a batch is being scored.
        """
        with self.pipeline_lock:
            return self.pipeline.snapshot(agents)

    def restore(self, blob: bytes, *, merge: bool = True) -> int:
        """Load a snapshot (merged by default); returns the agents it held."""
        with self.pipeline_lock:
            return self.pipeline.restore(blob, merge=merge)

    def _agents_path(self) -> Path | None:
        """Where the agent registry (liveness) is saved beside the snapshot."""
        path = self.snapshot_path
        return None if path is None else path.with_name(path.name + ".agents.json")

    def _write_snapshot(self) -> None:
        """Save the learned state to ``snapshot_path`` and the agent registry beside it
        (``<snapshot_path>.agents.json``), each atomically (fsync, then rename)."""
        path, agents = self.snapshot_path, self._agents_path()
        if path is None or agents is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._snapshot_file:
            _write_atomically(path, self.snapshot())
        logger.info("wrote detector state of %d agents to %s", len(self.pipeline), path)
        self._write_agents()

    def _write_agents(self) -> None:
        """Save the agent registry to ``<snapshot_path>.agents.json`` (atomically)."""
        agents = self._agents_path()
        if agents is None:
            return
        agents.parent.mkdir(parents=True, exist_ok=True)
        saved = [info.to_json() for info in self.registry.all()]
        with self._agents_file:
            _write_atomically(agents, json.dumps(saved).encode())
        logger.debug("wrote liveness of %d agents to %s", len(saved), agents)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)

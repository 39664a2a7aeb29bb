"""Helpers shared by tests: settings for a service on free loopback ports."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from agentwatch.collector import ServiceSettings


def local_settings(data_dir: Path, **overrides: Any) -> ServiceSettings:
    """Settings for a service under ``data_dir`` on loopback, every port picked free.

    Traces decode in the service process (``decode_workers=0``) unless a test asks for the
    production default's decoder process: starting one costs each test a second.
    """
    defaults: dict[str, Any] = {
        "otlp_http_port": 0,
        "otlp_grpc_port": 0,
        "api_port": 0,
        "decode_workers": 0,
    }
    return ServiceSettings(data_dir=data_dir, **{**defaults, **overrides})


class TickWatch:
    """A service's clock (``RunningService(settings, clock=...)``), shifted by ``offset_ns``
    when a test needs time to pass; notes the maintenance thread's reads (each tick reads it)."""

    def __init__(self) -> None:
        self.offset_ns = 0
        self._reads: list[int] = []
        self._changed = threading.Condition()

    def __call__(self) -> int:
        now = time.time_ns()
        if threading.current_thread().name == "maintenance":
            with self._changed:
                self._reads.append(now)
                self._changed.notify_all()
        return now + self.offset_ns

    def wait_for_a_tick_after(self, since_ns: int, timeout_s: float) -> bool:
        """True once a tick that began after ``since_ns`` (real time) has ended (the next one
        began)."""

        def ended() -> bool:
            later = [read for read in self._reads if read > since_ns]
            return bool(later) and later[-1] - later[0] > 500_000_000  # ticks are 1 s apart

        with self._changed:
            return self._changed.wait_for(ended, timeout_s)

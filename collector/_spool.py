"""A write-ahead spool: OTLP request bodies on local disk until ClickHouse has their rows.

Layout: ``DIR/segment-<first seq>.log`` files of records ``<u32 length><u32 crc32><u64 seq>``
followed by the payload, and ``DIR/committed``, the highest sequence number whose rows are in
ClickHouse (written to a temporary file, fsynced, renamed). A torn or corrupt record at the tail
of the newest segment, left by a crash in the middle of a write, is cut off on open; everything
before it is intact because every append is fsynced before it is acknowledged.

Thread-safe. ``append`` blocks for one write and one fsync.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIQ")
_PREFIX = "segment-"
_SUFFIX = ".log"


class SpoolFull(Exception):
    """The spool holds ``max_bytes`` already: refuse the request (429) until it drains."""


def _segment_name(first_seq: int) -> str:
    return f"{_PREFIX}{first_seq:020d}{_SUFFIX}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only, segmented, fsynced record log with a committed position.

    Args:
        directory: Where segments live (created when missing).
        segment_bytes: A new segment starts past this size.
        max_bytes: Disk budget; ``append`` raises SpoolFull beyond it.
        fsync: Sync every append (turn off only in benchmarks of the rest of the path).
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        max_bytes: int = 1024 * 1024 * 1024,
        fsync: bool = True,
    ) -> None:
        if segment_bytes <= _HEADER.size:
            raise ValueError(f"segment_bytes must be > {_HEADER.size}, got {segment_bytes}")
        if max_bytes < segment_bytes:
            raise ValueError(f"max_bytes must be >= segment_bytes, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one fsync at a time; waiters share its result
        self._committed = self._read_committed()
        self._segments: list[tuple[int, Path]] = []  # (first seq, path), oldest first
        self._last_seq = self._committed
        self._bytes = 0
        self._recover()
        self._synced = self._last_seq
        self._file = open(self._active_path(), "ab")  # noqa: SIM115 - kept open for appends

    # --- opening ---------------------------------------------------------------------------
    def _read_committed(self) -> int:
        try:
            return int((self.directory / "committed").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _recover(self) -> None:
        for path in sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}")):
            first = int(path.name[len(_PREFIX) : -len(_SUFFIX)])
            self._segments.append((first, path))
        for index, (_, path) in enumerate(self._segments):
            good, last = self._scan(path)
            if good < path.stat().st_size:
                if index != len(self._segments) - 1:
                    logger.error(
                        "spool segment %s is corrupt before its end; cut at %d", path, good
                    )
                else:
                    logger.warning("spool: cutting a torn record off %s at byte %d", path, good)
                with open(path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
            self._last_seq = max(self._last_seq, last)
            self._bytes += good
        self._drop_committed_segments()

    def _scan(self, path: Path) -> tuple[int, int]:
        """(bytes of intact records, last seq in them)."""
        good = last = 0
        with open(path, "rb") as f:
            while True:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return good, last
                length, crc, seq = _HEADER.unpack(header)
                payload = f.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    return good, last
                good += _HEADER.size + length
                last = seq

    def _active_path(self) -> Path:
        if not self._segments:
            path = self.directory / _segment_name(self._last_seq + 1)
            self._segments.append((self._last_seq + 1, path))
        return self._segments[-1][1]

    # --- writing ---------------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def committed_seq(self) -> int:
        with self._lock:
            return self._committed

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._last_seq

    def append(self, payload: bytes) -> int:
        """Durably append one record; returns its sequence number.

        Concurrent appends share fsyncs (group commit): each returns once an fsync that
        started after its write has finished.

        Raises:
            SpoolFull: The spool is at its disk budget.
        """
        record = _HEADER.size + len(payload)
        with self._lock:
            if self._bytes + record > self.max_bytes:
                raise SpoolFull(f"spool holds {self._bytes} bytes, budget {self.max_bytes}")
            if self._file.tell() and self._file.tell() + record > self.segment_bytes:
                self._rotate()
            seq = self._last_seq + 1
            self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload), seq))
            self._file.write(payload)
            self._file.flush()
            self._last_seq = seq
            self._bytes += record
        if self.fsync:
            self._sync_to(seq)
        return seq

    def _sync_to(self, seq: int) -> None:
        with self._sync_lock:
            with self._lock:
                if self._synced >= seq:
                    return  # an fsync that began after our write already covered it
                target = self._last_seq
                fd = os.dup(self._file.fileno())  # stays valid if a rotation closes the file
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            with self._lock:
                self._synced = max(self._synced, target)

    def _rotate(self) -> None:
        if self.fsync:
            os.fsync(self._file.fileno())  # everything written so far is in this file
            self._synced = self._last_seq
        self._file.close()
        path = self.directory / _segment_name(self._last_seq + 1)
        self._segments.append((self._last_seq + 1, path))
        self._file = open(path, "ab")  # noqa: SIM115
        if self.fsync:
            _fsync_dir(self.directory)

    # --- reading and committing ------------------------------------------------------------
    def read_from(self, seq: int, limit: int = 1 << 30) -> Iterator[tuple[int, bytes]]:
        """Records with sequence numbers >= seq, oldest first, at most ``limit`` of them."""
        with self._lock:
            self._file.flush()
            segments = list(self._segments)
        yielded = 0
        for index, (_, path) in enumerate(segments):
            following = segments[index + 1][0] if index + 1 < len(segments) else None
            if following is not None and following <= seq:
                continue
            try:
                f = open(path, "rb")  # noqa: SIM115
            except FileNotFoundError:  # dropped after a commit meanwhile
                continue
            with f:
                while yielded < limit:
                    header = f.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break
                    length, crc, record_seq = _HEADER.unpack(header)
                    if record_seq < seq:
                        f.seek(length, os.SEEK_CUR)
                        continue
                    payload = f.read(length)
                    if len(payload) < length or zlib.crc32(payload) != crc:
                        break
                    yield record_seq, payload
                    yielded += 1
            if yielded >= limit:
                return

    def commit(self, seq: int) -> None:
        """Every record up to ``seq`` is in ClickHouse: persist that, drop spent segments."""
        with self._lock:
            if seq <= self._committed:
                return
            temporary = self.directory / "committed.tmp"
            with open(temporary, "w") as f:
                f.write(str(seq))
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(temporary, self.directory / "committed")
            if self.fsync:
                _fsync_dir(self.directory)
            self._committed = seq
            self._drop_committed_segments()

    def _drop_committed_segments(self) -> None:
        # A segment is spent when the next one starts at or below committed + 1.
        while len(self._segments) > 1 and self._segments[1][0] <= self._committed + 1:
            _, path = self._segments.pop(0)
            self._bytes -= path.stat().st_size
            path.unlink()

    def close(self) -> None:
        with self._lock:
            self._file.close()

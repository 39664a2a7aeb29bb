"""The outbox's SQLite table: its schema, and every statement :class:`~._outbox.Outbox` runs.

WAL mode with ``synchronous=FULL`` and autocommit, so each write is one fsync'd commit that
survives ``kill -9`` and power loss. ``webhook_id`` is unique: storing a message whose id is
already there is a no-op, which is what keeps a decision replayed after a crash from being sent
twice. A message is ``pending`` until it ends ``delivered`` or ``failed``; only finished messages
are ever deleted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._notification import OutboundMessage

STATE_PENDING: Final = "pending"
STATE_DELIVERED: Final = "delivered"
STATE_FAILED: Final = "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL,
    min_interval_s REAL NOT NULL,
    agent TEXT NOT NULL,
    action TEXT NOT NULL,
    anomaly_id TEXT NOT NULL,
    created_s REAL NOT NULL,
    next_attempt_s REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    last_status INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    finished_s REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, destination, seq);
"""
_COLUMNS = (
    "seq, webhook_id, destination, target, url, body, priority, min_interval_s, agent, action,"
    " anomaly_id, created_s, next_attempt_s, attempts"
)
_MESSAGE_FIELDS = (
    "webhook_id", "destination", "target", "agent", "action", "anomaly_id", "attempts",
    "state", "last_status", "last_error",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A pending message as stored: what an attempt needs to send it and to record the outcome."""

    seq: int
    webhook_id: str
    destination: str
    target: str
    url: str
    body: bytes
    priority: int
    min_interval_s: float
    agent: str
    action: str
    anomaly_id: str
    created_s: float
    next_attempt_s: float
    attempts: int


class OutboxStore:
    """The ``outbox`` table in one SQLite database.

    Not thread-safe by itself: one connection, shared across threads, so the caller serialises
    every call (:class:`~._outbox.Outbox` holds its lock). Every method blocks on SQLite, a write
    on one fsync'd commit (about a millisecond on SSD).

    Args:
        path: The SQLite file (its folder is made when missing); None keeps the table in memory
            (tests, no durability).
    """

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def insert(self, message: OutboundMessage, now_s: float) -> bool:
        """Store ``message`` as pending, due at ``now_s``.

        Returns:
            True when stored, False when its webhook-id already was (nothing changes then).
        """
        headers = "\n".join(f"{k}: {v}" for k, v in message.headers.items())
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO outbox (webhook_id, destination, target, url, body, headers,"
            " priority, min_interval_s, agent, action, anomaly_id, created_s, next_attempt_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.webhook_id,
                message.destination,
                message.target,
                message.url,
                message.body,
                headers,
                message.priority,
                message.min_interval_s,
                message.agent,
                message.action,
                message.anomaly_id,
                now_s,
                now_s,
            ),
        )
        return cursor.rowcount == 1

    def heads(self) -> list[OutboxRow]:
        """The oldest pending message of every destination (the only one that may go next),
        by priority (control commands first), then oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE seq IN (SELECT MIN(seq) FROM outbox"
            " WHERE state = 'pending' GROUP BY destination) ORDER BY priority, seq"
        ).fetchall()
        return [OutboxRow(*raw) for raw in rows]

    def due_by_destination(self) -> list[tuple[str, float, float]]:
        """``(destination, earliest next attempt, smallest min interval)`` of every destination
        with pending messages."""
        rows: list[tuple[str, float, float]] = self._db.execute(
            "SELECT destination, MIN(next_attempt_s), MIN(min_interval_s) FROM outbox"
            " WHERE state = 'pending' GROUP BY destination"
        ).fetchall()
        return rows

    def reschedule(
        self, seq: int, *, attempts: int, next_attempt_s: float, status: int | None, error: str
    ) -> None:
        """Record a failed attempt of pending message ``seq`` and when to try it again."""
        self._db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_s = ?, last_status = ?,"
            " last_error = ? WHERE seq = ?",
            (attempts, next_attempt_s, status, error, seq),
        )

    def finish(
        self,
        seq: int,
        *,
        attempts: int,
        state: str,
        status: int | None,
        error: str,
        finished_s: float,
    ) -> None:
        """Record the last attempt of message ``seq``: ``state`` is delivered or failed."""
        self._db.execute(
            "UPDATE outbox SET attempts = ?, state = ?, last_status = ?, last_error = ?,"
            " finished_s = ? WHERE seq = ?",
            (attempts, state, status, error, finished_s, seq),
        )

    def count_pending(self) -> int:
        """How many messages are neither delivered nor failed."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return int(count)

    def messages(self, state: str | None = None) -> list[dict[str, Any]]:
        """Stored messages without URL and body, oldest first; only those in ``state`` if given."""
        query = (
            "SELECT webhook_id, destination, target, agent, action, anomaly_id, attempts, state,"
            " last_status, last_error FROM outbox"
        )
        params: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            params = (state,)
        rows = self._db.execute(query + " ORDER BY seq", params).fetchall()
        return [dict(zip(_MESSAGE_FIELDS, row, strict=True)) for row in rows]

    def delete_finished_before(self, cutoff_s: float) -> int:
        """Delete delivered and failed messages finished before ``cutoff_s``; return how many."""
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND finished_s < ?", (cutoff_s,)
        )
        self._db.commit()
        return int(cursor.rowcount)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

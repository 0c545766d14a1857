"""Chat history in SQLite (stdlib ``sqlite3``, WAL mode), versioned with ``PRAGMA user_version``.

The database file is created mode 0600 (SQLite gives its -wal and -shm files the same mode).
One connection is shared by the UI thread and workers, serialised by a lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import HearthError

MessageStatus = Literal["done", "streaming", "stopped", "error"]

# Each entry upgrades the schema by one version; user_version counts the entries applied.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'done',
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages(chat_id, id);
    """,
)


class HistoryError(HearthError):
    """The history database cannot be opened or is from a newer hearth."""

    title = "History error"


@dataclass(frozen=True)
class ChatSummary:
    """One row of the chat list."""

    id: int
    title: str
    model: str
    updated_at: float
    """Unix time, seconds."""
    n_messages: int


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    content: str
    status: MessageStatus


class HistoryStore:
    """All chats and their messages.

    Raises:
        HistoryError: the file cannot be opened, is not a database, or its schema version is
            newer than this hearth knows.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"cannot open {path}: {exc}") from None

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise HistoryError(
                f"{self.path} has schema version {version}; this hearth knows up to "
                f"{len(MIGRATIONS)}. Upgrade hearth."
            )
        for number in range(version, len(MIGRATIONS)):
            with self._lock:
                self._db.executescript(
                    f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
                )

    def create_chat(self, title: str, model: str = "") -> int:
        """Start a chat; returns its id."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO chats (title, model, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (title, model, now, now),
            )
            return int(cur.lastrowid)

    def list_chats(self) -> list[ChatSummary]:
        """All chats, most recently updated first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.model, c.updated_at, COUNT(m.id) FROM chats c "
                "LEFT JOIN messages m ON m.chat_id = c.id GROUP BY c.id "
                "ORDER BY c.updated_at DESC, c.id DESC"
            ).fetchall()
        return [ChatSummary(*row) for row in rows]

    def get_chat(self, chat_id: int) -> ChatSummary | None:
        return next((c for c in self.list_chats() if c.id == chat_id), None)

    def rename_chat(self, chat_id: int, title: str) -> None:
        with self._lock:
            self._db.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat and its messages."""
        with self._lock:
            self._db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def add_message(
        self, chat_id: int, role: str, content: str, status: MessageStatus = "done"
    ) -> int:
        """Append a message; returns its id."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO messages (chat_id, role, content, status, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (chat_id, role, content, status, now),
            )
            self._db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))
            return int(cur.lastrowid)

    def update_message(self, message_id: int, content: str, status: MessageStatus) -> None:
        """Overwrite a message's text and status (used while a reply streams)."""
        with self._lock:
            self._db.execute(
                "UPDATE messages SET content = ?, status = ? WHERE id = ?",
                (content, status, message_id),
            )

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """A chat's messages, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, role, content, status FROM messages WHERE chat_id = ? ORDER BY id",
                (chat_id,),
            ).fetchall()
        return [StoredMessage(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

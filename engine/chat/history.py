"""Chat history in SQLite (stdlib ``sqlite3``, WAL mode), versioned with ``PRAGMA user_version``.

The database file is created mode 0600 (SQLite gives its -wal and -shm files the same mode).
One connection is shared by the UI thread and workers, serialised by a lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
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
    # 2: the index of the first message the model still sees (a long chat's context window slid)
    """
    ALTER TABLE chats ADD COLUMN window_start INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: full-text search over every message (SQLite FTS5, an external-content index of
    # messages.content kept in step by triggers; 'rebuild' indexes the rows saved before it)
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    """,
)

MIGRATIONS += (
    # 4: the preset ([presets.NAME] in the config) the chat was had with; '' for [chat] itself
    """
    ALTER TABLE chats ADD COLUMN preset TEXT NOT NULL DEFAULT '';
    """,
)

MATCH_START = "\x02"
MATCH_END = "\x03"
"""What :meth:`HistoryStore.search` puts around each matched word of a snippet (STX/ETX: a
stray one in a message only moves a highlight; the text is made inert after splitting)."""


BUSY_S = 10.0
"""Seconds to wait for another hearth's write lock before saying the database is locked."""


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
class SearchHit:
    """One message matching a search: its chat, when it was written (Unix seconds), and a
    snippet of about 12 words with :data:`MATCH_START`/:data:`MATCH_END` around the matches."""

    chat_id: int
    chat_title: str
    message_id: int
    role: str
    created_at: float
    snippet: str


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    content: str
    status: MessageStatus
    created_at: float = 0.0
    """Unix time, seconds."""


class HistoryStore:
    """All chats and their messages.

    Every method raises :class:`HistoryError` (never a bare ``sqlite3`` error) when the database
    cannot be read or written: a damaged page, a full disk, a read-only file. A database that
    can be read but not written opens read-only (:attr:`read_only`): chats can be read, and each
    write raises.

    Raises:
        HistoryError: the file cannot be opened, is not a database, or its schema version is
            newer than this hearth knows.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.read_only = False
        """The database could be opened only for reading (a read-only file or directory)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = self._connect()
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"cannot open {path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        """A read-write connection in WAL mode; a read-only one (``mode=ro``) when the file or its
        directory cannot be written."""
        if os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK):
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_S)
            try:
                _when_unlocked(lambda: db.execute("PRAGMA journal_mode=WAL"))
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA synchronous=NORMAL")
                return db
            except sqlite3.OperationalError as exc:
                if "readonly" not in str(exc):  # a read-only mount, an immutable file: read-only
                    raise
                db.close()
        self.read_only = True
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=BUSY_S)

    @contextlib.contextmanager
    def _using(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; sqlite errors become one :class:`HistoryError`."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                hint = " (the history is read-only)" if self.read_only else ""
                raise HistoryError(f"cannot {doing} in {self.path}: {exc}{hint}") from None

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Bring the schema up to date. Safe when two hearths start at once on a new home: each
        step runs in ``BEGIN IMMEDIATE`` (one writer at a time) and re-reads the version inside
        it, so the second one finds the work done."""
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise HistoryError(
                f"{self.path} has schema version {version}; this hearth knows up to "
                f"{len(MIGRATIONS)}. Upgrade hearth."
            )
        if version == len(MIGRATIONS) or self.read_only:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for number in range(self.schema_version, len(MIGRATIONS)):
                    for statement in _statements(MIGRATIONS[number]):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def create_chat(self, title: str, model: str = "", preset: str = "") -> int:
        """Start a chat (had with ``preset``, '' for none); returns its id."""
        now = time.time()
        with self._using("save a new chat") as db:
            cur = db.execute(
                "INSERT INTO chats (title, model, created_at, updated_at, preset) VALUES (?, ?, ?, ?, ?)",
                (title, model, now, now, preset),
            )
            return int(cur.lastrowid or 0)

    def chat_preset(self, chat_id: int) -> str:
        """The preset chat ``chat_id`` was last had with ('' for none, or no such chat)."""
        with self._using("read the chat") as db:
            row = db.execute("SELECT preset FROM chats WHERE id = ?", (chat_id,)).fetchone()
        return str(row[0]) if row else ""

    def set_chat_preset(self, chat_id: int, preset: str) -> None:
        with self._using("save the chat's preset") as db:
            db.execute("UPDATE chats SET preset = ? WHERE id = ?", (preset, chat_id))

    def list_chats(self) -> list[ChatSummary]:
        """All chats, most recently updated first."""
        with self._using("list the chats") as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.model, c.updated_at, COUNT(m.id) FROM chats c "
                "LEFT JOIN messages m ON m.chat_id = c.id GROUP BY c.id "
                "ORDER BY c.updated_at DESC, c.id DESC"
            ).fetchall()
        return [ChatSummary(*row) for row in rows]

    def get_chat(self, chat_id: int) -> ChatSummary | None:
        with self._using("read a chat") as db:
            row = db.execute(
                "SELECT c.id, c.title, c.model, c.updated_at, "
                "(SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id) FROM chats c WHERE c.id = ?",
                (chat_id,),
            ).fetchone()
        return ChatSummary(*row) if row else None

    def rename_chat(self, chat_id: int, title: str) -> None:
        with self._using("rename the chat") as db:
            db.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))

    def set_chat_model(self, chat_id: int, model: str) -> None:
        """Record ``model`` as the one answering the chat (its latest reply)."""
        with self._using("record the chat's model") as db:
            db.execute("UPDATE chats SET model = ? WHERE id = ? AND model != ?", (model, chat_id, model))

    def window_start(self, chat_id: int) -> int:
        """Index of the chat's first message the model still sees (0: all of them)."""
        with self._using("read the chat") as db:
            row = db.execute("SELECT window_start FROM chats WHERE id = ?", (chat_id,)).fetchone()
        return int(row[0]) if row else 0

    def set_window_start(self, chat_id: int, start: int) -> None:
        with self._using("save the chat's context window") as db:
            db.execute("UPDATE chats SET window_start = ? WHERE id = ?", (start, chat_id))

    def delete_message(self, message_id: int) -> None:
        with self._using("delete a message") as db:
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat and its messages."""
        with self._using("delete the chat") as db:
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def add_message(
        self, chat_id: int, role: str, content: str, status: MessageStatus = "done"
    ) -> int:
        """Append a message; returns its id."""
        now = time.time()
        with self._using("save a message") as db:
            db.execute("BEGIN")
            try:
                cur = db.execute(
                    "INSERT INTO messages (chat_id, role, content, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (chat_id, role, content, status, now),
                )
                db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return int(cur.lastrowid or 0)

    def update_message(self, message_id: int, content: str, status: MessageStatus) -> None:
        """Overwrite a message's text and status (used while a reply streams)."""
        with self._using("save the reply") as db:
            db.execute(
                "UPDATE messages SET content = ?, status = ? WHERE id = ?",
                (content, status, message_id),
            )

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """A chat's messages, oldest first."""
        with self._using("read the chat") as db:
            rows = db.execute(
                "SELECT id, role, content, status, created_at FROM messages WHERE chat_id = ? ORDER BY id",
                (chat_id,),
            ).fetchall()
        return [StoredMessage(*row) for row in rows]

    def search(self, words: str, limit: int = 50) -> list[SearchHit]:
        """Messages containing every word of ``words`` (any case, accents ignored; the last word
        may be the start of one, as someone types), best match first (FTS5's bm25 rank).
        ``words`` is plain text: FTS5 query syntax in it (quotes, AND, ``-``, ``:``) is searched
        for, not obeyed. No words, no hits."""
        query = fts_query(words)
        if not query:
            return []
        with self._using("search the chats") as db:
            rows = db.execute(
                "SELECT m.chat_id, c.title, m.id, m.role, m.created_at, "
                f"snippet(messages_fts, 0, '{MATCH_START}', '{MATCH_END}', '…', 12) "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN chats c ON c.id = m.chat_id WHERE messages_fts MATCH ? "
                "ORDER BY rank LIMIT ?",
                (query, limit),
            ).fetchall()
        return [SearchHit(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def snippet_parts(snippet: str) -> list[tuple[str, bool]]:
    """A :class:`SearchHit` snippet as ``(text, is_a_match)`` pieces, in order (the markers gone;
    the text is still untrusted: make it inert before showing it)."""
    pieces = snippet.replace(MATCH_END, MATCH_START).split(MATCH_START)
    return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]


def fts_query(words: str) -> str:
    """An FTS5 query matching every word of ``words`` as typed: each word a quoted string (so
    ``AND``, ``"``, ``-`` and ``col:`` are text, not syntax), the last one also as a prefix.
    Empty when there are no words."""
    parts = [w for w in words.split() if w.strip('"')]
    quoted = ['"' + w.replace('"', '""') + '"' for w in parts]
    if quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


def _when_unlocked(step: Callable[[], object]) -> None:
    """Run ``step``, again while another hearth holds the lock (up to :data:`BUSY_S`): switching
    a new database to WAL needs it alone, and SQLite answers "database is locked" at once there
    instead of waiting on its busy timeout."""
    deadline = time.monotonic() + BUSY_S
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, run one by one inside the migration's
    transaction (``executescript`` would commit it first). Split where SQLite says a statement
    is complete (``sqlite3.complete_statement``), so a trigger's ``BEGIN ... END`` stays whole."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements

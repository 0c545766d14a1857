"""History on real SQLite: schema version, migrations, WAL, owner-only files, CRUD."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from engine.chat.history import MIGRATIONS, HistoryError, HistoryStore


def test_new_database_is_wal_versioned_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    chat = store.create_chat("first", "model-a")
    store.add_message(chat, "user", "hi")
    assert store.schema_version == len(MIGRATIONS)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for file in tmp_path.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    store.close()


def test_chats_and_messages_round_trip(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    a = store.create_chat("alpha")
    b = store.create_chat("beta")
    store.add_message(a, "user", "question")
    reply = store.add_message(a, "assistant", "", "streaming")
    store.update_message(reply, "partial answer", "stopped")
    assert [m.content for m in store.messages(a)] == ["question", "partial answer"]
    assert store.messages(a)[1].status == "stopped"
    assert [c.title for c in store.list_chats()] == ["alpha", "beta"]  # a was updated last
    store.rename_chat(b, "renamed")
    assert store.get_chat(b).title == "renamed"
    store.delete_chat(a)
    assert store.messages(a) == []
    assert [c.id for c in store.list_chats()] == [b]


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    chat = store.create_chat("kept")
    store.add_message(chat, "user", "still here")
    store.close()
    again = HistoryStore(path)
    assert again.messages(chat)[0].content == "still here"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    raw.commit()
    raw.close()
    with pytest.raises(HistoryError, match="Upgrade hearth"):
        HistoryStore(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="cannot open"):
        HistoryStore(path)


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    raw.execute("INSERT INTO chats (title, model, created_at, updated_at) VALUES ('old', 'm', 1, 1)")
    raw.commit()
    raw.close()
    store = HistoryStore(path)
    assert store.schema_version == len(MIGRATIONS) == 2
    assert [c.title for c in store.list_chats()] == ["old"]
    assert store.window_start(1) == 0
    store.set_window_start(1, 6)
    assert store.window_start(1) == 6

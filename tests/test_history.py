"""History on real SQLite: schema version, migrations, WAL, owner-only files, CRUD."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from engine.chat.history import MATCH_END, MATCH_START, MIGRATIONS, HistoryError, HistoryStore


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
    assert store.schema_version == len(MIGRATIONS) == 4
    assert [c.title for c in store.list_chats()] == ["old"]
    assert store.window_start(1) == 0
    store.set_window_start(1, 6)
    assert store.window_start(1) == 6


def test_search_finds_words_across_chats_and_roles(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    soup = store.create_chat("soup")
    store.add_message(soup, "user", "How long should lentil soup simmer?")
    store.add_message(soup, "assistant", "Simmer the lentils for about 25 minutes, until soft.")
    disks = store.create_chat("disks")
    store.add_message(disks, "user", "Which files fill my disk?")
    reply = store.add_message(disks, "assistant", "", "streaming")
    store.update_message(reply, "Try du -ah /var | sort -rh | head; lentils not included.", "done")
    hits = store.search("lentils")
    assert {(h.chat_title, h.role) for h in hits} == {("soup", "assistant"), ("disks", "assistant")}
    assert all(MATCH_START in h.snippet and MATCH_END in h.snippet for h in hits)
    assert [h.chat_title for h in store.search("LENTIL soup")] == ["soup"]  # any case, all words
    assert {h.message_id for h in store.search("simm")} == {1, 2}  # the last word as a prefix
    # query syntax is searched for as text, never an FTS5 syntax error
    assert store.search("sort -rh") and store.search('du "-ah')
    assert store.search("AND OR NOT") == [] and store.search("content: NEAR(") == []
    assert store.search("   ") == []


def test_search_indexes_rows_saved_before_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "PRAGMA user_version = 2;")
    raw.execute("INSERT INTO chats (title, model, created_at, updated_at) VALUES ('old', 'm', 1, 1)")
    raw.execute("INSERT INTO messages (chat_id, role, content, created_at) VALUES (1, 'user', 'a café question', 1)")
    raw.commit()
    raw.close()
    store = HistoryStore(path)
    assert [(h.chat_title, h.message_id) for h in store.search("cafe")] == [("old", 1)]  # accents ignored


def test_a_deleted_chat_leaves_no_match(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    keep = store.create_chat("keep")
    store.add_message(keep, "user", "quartz watch")
    gone = store.create_chat("gone")
    store.add_message(gone, "user", "quartz crystal")
    one = store.add_message(keep, "user", "quartz clock")
    store.delete_chat(gone)
    store.delete_message(one)
    assert [h.chat_title for h in store.search("quartz")] == ["keep"]
    assert store.search("crystal") == [] and store.search("clock") == []

"""Damaged storage never crashes hearth and loses nothing already stored: a read-only history
(an immutable file), a chat on a corrupt page, two hearths starting at once on a new home, a disk
that fills mid-reply, a prompt sent while the model still loads. Real SQLite, the real model."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import paths
from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.history import HistoryError, HistoryStore
from engine.chat.llama import LlamaBackend
from engine.chat.session import ChatSession, ReplySaved
from tests.apphelpers import ask, make_app, wait_until
from tui.screens.chat import ChatScreen
from tui.screens.chats import ChatsScreen
from tui.widgets.conversation import ReplyView, UserMessage

GREEDY = GenerationParams(temperature=0.0, max_tokens=24)


def _stored_chat(path: Path, title: str, messages: list[tuple[str, str]]) -> int:
    store = HistoryStore(path)
    chat = store.create_chat(title, "m")
    for role, content in messages:
        store.add_message(chat, role, content)
    store.close()
    return chat


@pytest.fixture
def immutable():
    """``chattr +i`` on files (root cannot write them either); undone afterwards."""
    done: list[Path] = []

    def make(path: Path) -> Path:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        done.append(path)
        return path

    yield make
    for path in done:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_read_only_history_opens_for_reading_and_refuses_writes_clearly(tmp_path: Path, immutable) -> None:
    db = tmp_path / "h.sqlite3"
    chat = _stored_chat(db, "kept", [("user", "hello"), ("assistant", "hi there")])
    immutable(db)
    store = HistoryStore(db)
    assert store.read_only
    assert [c.title for c in store.list_chats()] == ["kept"]
    assert [m.content for m in store.messages(chat)] == ["hello", "hi there"]
    for write in (lambda: store.rename_chat(chat, "new"), lambda: store.delete_chat(chat),
                  lambda: store.create_chat("x")):
        with pytest.raises(HistoryError, match="read-only"):
            write()


async def test_read_only_history_in_the_tui_warns_once_and_chat_goes_on(gguf_path: Path, immutable) -> None:
    db = paths.history_db_path()
    _stored_chat(db, "an old chat", [("user", "old question"), ("assistant", "old answer")])
    immutable(db)
    app = make_app(gguf_path)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.screen
        assert isinstance(chat, ChatScreen)
        await wait_until(pilot, lambda: any("read-only" in n.title for n in app._notifications))
        await ask(pilot, "What is the capital of France? Answer in one word.")
        await wait_until(pilot, lambda: chat.query(ReplyView) and not chat.streaming)
        assert "Paris" in chat.query_one(ReplyView).text  # answered, though not saved
        await wait_until(pilot, lambda: any(n.title == "History not saved" for n in app._notifications))
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        await pilot.press("d")  # delete: refused with a notification, the list stays
        await wait_until(pilot, lambda: any("cannot delete" in n.message for n in app._notifications))
        assert isinstance(app.screen, ChatsScreen)
        await pilot.press("enter")  # the old chat opens from the read-only file
        await wait_until(pilot, lambda: app.screen is chat and chat.query(UserMessage))
        assert chat.query_one(UserMessage).text == "old question"
    assert HistoryStore(db).messages(1)[1].content == "old answer"  # nothing lost


def _corrupt_page_holding(db: Path, marker: bytes, page_size: int = 4096) -> None:
    data = bytearray(db.read_bytes())
    at = data.rindex(marker)  # the last: an overflow page of the long message, nothing else on it
    start = at - at % page_size
    data[start:start + page_size] = b"\xff" * page_size
    db.write_bytes(bytes(data))


async def test_a_chat_on_a_corrupt_page_is_a_notification_not_a_crash(tmp_path: Path) -> None:
    db = paths.history_db_path()
    _stored_chat(db, "intact", [("user", "fine"), ("assistant", "fine too")])
    _stored_chat(db, "damaged", [("user", "long"), ("assistant", "DAMAGEDPAGE" * 2000)])
    store = HistoryStore(db)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    _corrupt_page_holding(db, b"DAMAGEDPAGE" * 50)
    app = make_app(None)
    async with app.run_test(size=(100, 30)) as pilot:
        from tui.screens.models import ModelsScreen

        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        await pilot.press("enter")  # "damaged" is the newest
        await wait_until(pilot, lambda: any(n.title == "History error" for n in app._notifications))
        assert isinstance(app.screen, ChatScreen) and not app.screen.query(UserMessage)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        await pilot.press("down", "enter")  # the intact chat still opens
        await wait_until(pilot, lambda: app.screen.query(UserMessage))
        assert app.screen.query_one(UserMessage).text == "fine"


def test_two_hearths_starting_at_once_on_a_new_home_both_open(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from engine.chat.history import HistoryStore; "
            "start = float(sys.argv[2]); time.sleep(max(0, start - time.time())); "
            "s = HistoryStore(Path(sys.argv[1])); s.create_chat('x'); print(s.schema_version)")
    for attempt in range(10):
        db = tmp_path / f"race{attempt}" / "history.sqlite3"
        import time

        start = str(time.time() + 1.0)
        runs = [subprocess.Popen([sys.executable, "-c", code, str(db), start], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [run.communicate(timeout=60) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], results
        assert len(HistoryStore(db).list_chats()) == 2


def test_a_prompt_is_stored_the_moment_it_is_sent(gguf_path: Path, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    backend = LlamaBackend(gguf_path, n_ctx=1024, seed=1)
    session = ChatSession(backend, store)
    backend._load_lock.acquire()  # the model is "still loading"
    events: list = []
    worker = threading.Thread(target=lambda: events.extend(session.send("kept while loading", GREEDY, threading.Event())))
    worker.start()
    try:
        for _ in range(200):
            if session.chat_id is not None and store.messages(session.chat_id):
                break
            threading.Event().wait(0.02)
        assert [m.content for m in store.messages(session.chat_id)] == ["kept while loading"]
    finally:
        backend._load_lock.release()
    worker.join(60)
    assert isinstance(events[-1], ReplySaved) and events[-1].status == "done"
    backend.close()


def test_a_disk_that_fills_mid_reply_keeps_the_chat_and_stores_the_reply_once_there_is_room(
    backend, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    session = ChatSession(backend, store)
    long = GenerationParams(temperature=0.0, max_tokens=300)
    prompt = "Here are my notes: " + "the lighthouse keeper watched the sea. " * 90 + "Tell me a story about them."
    text: list[str] = []
    for event in session.send(prompt, long, threading.Event()):
        if isinstance(event, TokenEvent) and event.text:
            if not text:  # the disk is full from the first token on: the growing reply needs pages
                pages = store._db.execute("PRAGMA page_count").fetchone()[0]
                store._db.execute(f"PRAGMA max_page_count = {pages}")
            text.append(event.text)
        last = event
    assert isinstance(last, ReplySaved) and last.storage_error is not None
    assert "full" in last.storage_error.message
    assert session.messages[-1]["content"] == "".join(text)  # the conversation kept it all
    assert store.messages(session.chat_id)[-1].status == "streaming"  # the last save that fitted
    store._db.execute("PRAGMA max_page_count = 1073741823")  # room again
    assert session.flush(), session.storage_error
    stored = store.messages(session.chat_id)
    assert stored[-1].content == "".join(text) and stored[-1].status == "done"

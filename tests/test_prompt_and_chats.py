"""Keyboard behaviour of the prompt and the chats screen (no model needed: these are about the
UI; sending is covered on the real model in test_app.py)."""

from __future__ import annotations

from textual import events

from engine import paths
from engine.chat.history import HistoryStore
from tests.apphelpers import make_app, skip_first_run, wait_until
from tui.screens.chat import ChatScreen
from tui.screens.chats import ChatsScreen, RenameScreen
from tui.widgets.conversation import ReplyView, UserMessage
from tui.widgets.prompt_input import PromptInput

SIZE = (80, 24)


async def test_ctrl_j_inserts_newline_and_enter_on_blank_is_ignored() -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        prompt = app.screen.query_one(PromptInput)
        await pilot.press("h", "i", "ctrl+j", "t", "h", "e", "r", "e")
        assert prompt.text == "hi\nthere"
        prompt.load_text("   \n  ")
        await pilot.press("enter")
        assert not app.screen.query(UserMessage)
        assert prompt.text == "   \n  "  # nothing sent, nothing lost


async def test_no_model_keeps_the_prompt_and_says_how_to_get_one() -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("hello")
        await pilot.press("enter")
        assert prompt.text == "hello"
        assert any("--model" in n.message for n in app._notifications)


async def test_up_arrow_recalls_earlier_prompts() -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        prompt = app.screen.query_one(PromptInput)
        prompt.remember("first question")
        prompt.remember("second question")
        prompt.load_text("draft")
        await pilot.press("up")
        assert prompt.text == "second question"
        await pilot.press("up")
        assert prompt.text == "first question"
        await pilot.press("up")
        assert prompt.text == "first question"
        await pilot.press("down")
        assert prompt.text == "second question"
        await pilot.press("down")
        assert prompt.text == "draft"


async def test_large_paste_lands_and_keyboard_still_works() -> None:
    app = make_app(None)
    pasted = ("log line with some words in it 0123456789\n" * 2500)[:100_000]
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        prompt = app.screen.query_one(PromptInput)
        prompt.focus()
        app.post_message(events.Paste(pasted))  # as the terminal driver delivers it
        await wait_until(pilot, lambda: len(prompt.text) == len(pasted))
        await pilot.press("x")
        assert prompt.text.endswith("x")
        await pilot.press("ctrl+o")  # other keys still answer
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))


async def test_chats_screen_rename_delete_open() -> None:
    store = HistoryStore(paths.history_db_path())
    older = store.create_chat("older chat")
    store.add_message(older, "user", "old question")
    store.add_message(older, "assistant", "old answer")
    newer = store.create_chat("newer chat")
    store.add_message(newer, "user", "new question")
    store.add_message(newer, "assistant", "half an answer", "stopped")
    store.close()

    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press("ctrl+u", *"renamed", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        assert app.store.get_chat(newer).title == "renamed"
        await pilot.press("down", "d")  # delete the older chat
        assert app.store.get_chat(older) is None
        await pilot.press("enter")  # open what is left
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen.query(ReplyView))
        reply = app.screen.query_one(ReplyView)
        assert reply.text == "half an answer" and reply.status == "stopped"
        assert "stopped" in str(reply.query_one(".reply-status").render())
        assert app.session.chat_id == newer


async def test_search_filters_as_you_type_and_opens_the_chat_at_the_match() -> None:
    store = HistoryStore(paths.history_db_path())
    soup = store.create_chat("soup")
    for i in range(30):  # a long chat: the match is far above the newest messages
        store.add_message(soup, "user", f"question {i}")
        store.add_message(soup, "assistant", "Simmer the lentils for 25 minutes." if i == 3 else f"answer {i}")
    other = store.create_chat("disks")
    store.add_message(other, "user", "which files fill my disk?")
    store.close()

    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        chats = app.screen.query_one("#chats")
        assert chats.option_count == 2  # every chat, until words are typed
        await pilot.press("slash", *"lent")  # the search field; "r"/"d" type, not rename/delete
        await wait_until(pilot, lambda: chats.option_count == 1)
        label = str(chats.get_option_at_index(0).prompt)
        assert "soup" in label and "lentils" in label and "hearth:" in label
        await pilot.press("backspace", "backspace", "backspace", "backspace", *"disk")
        await wait_until(pilot, lambda: "disks" in str(chats.get_option_at_index(0).prompt))
        assert app.store.get_chat(other) is not None  # typing "d" deleted nothing
        await pilot.press("ctrl+u", *"lentils", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen.query(".-found"))
        found = app.screen.query_one(".-found")
        assert isinstance(found, ReplyView) and found.text == "Simmer the lentils for 25 minutes."
        await pilot.pause()
        conversation = found.parent
        assert found.region.y >= conversation.region.y and found.region.y < conversation.region.bottom  # in view
        assert app.session.chat_id == soup


async def test_palette_exports_the_open_chat(tmp_path, monkeypatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    store = HistoryStore(paths.history_db_path())
    chat = store.create_chat("soup")
    store.add_message(chat, "user", "How long should lentils simmer?")
    store.add_message(chat, "assistant", "About 25 minutes.", "stopped")
    store.close()

    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await skip_first_run(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen.query(ReplyView))
        await pilot.press("ctrl+p", *"Export chat as JSON")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: (tmp_path / f"hearth-chat-{chat}.json").exists())
    data = json.loads((tmp_path / f"hearth-chat-{chat}.json").read_text())
    assert [(m["role"], m["content"], m["status"]) for m in data["messages"]] == [
        ("user", "How long should lentils simmer?", "done"), ("assistant", "About 25 minutes.", "stopped")]


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

"""Pilot tests of the chat UI on the real model (llama.cpp, SmolLM2 GGUF, real SQLite)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from textual.widgets._toast import Toast

from engine import paths
from engine.chat.history import HistoryStore
from tests.apphelpers import ask, make_app, make_settings, wait_until
from tui.screens.chat import ChatScreen
from tui.screens.chats import ChatsScreen
from tui.widgets.conversation import ReplyView, UserMessage
from tui.widgets.prompt_input import PromptInput
from tui.widgets.status_bar import StatusBar

pytestmark = pytest.mark.model

SIZE = (80, 24)


def chat(app) -> ChatScreen:
    assert isinstance(app.screen, ChatScreen)
    return app.screen


async def test_reply_streams_in_and_is_saved(gguf_path: Path) -> None:
    # cpu_budget 0: redraw at max_fps, so a 2-second reply shows many steps (pacing has its own test)
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 300}, ui={"cpu_budget": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Write a long story about the sea.")
        screen = chat(app)
        await wait_until(pilot, lambda: screen.query(ReplyView))
        reply = screen.query_one(ReplyView)
        lengths = set()
        while screen.streaming:
            lengths.add(len(reply.text))
            await pilot.pause(0.01)
        assert len([n for n in lengths if n > 0]) >= 3, f"reply updated only {sorted(lengths)}"
        assert reply.status == "done" and len(reply.text.split()) > 5
        assert reply.markdown.source == reply.text  # rendered once in full at the end
        status = str(screen.query_one(StatusBar).render())
        assert "tok/s" in status and "TTFT" in status and "ctx " in status and "MiB" in status
        assert screen.query_one(PromptInput).text == ""
    stored = HistoryStore(paths.history_db_path())
    (summary,) = stored.list_chats()
    messages = stored.messages(summary.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content == reply.text and messages[1].status == "done"


async def test_escape_stops_mid_stream_and_next_prompt_works(gguf_path: Path) -> None:
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 800}))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(app)
        await ask(pilot, "Write a very long story about a lighthouse keeper and a storm.")
        await wait_until(pilot, lambda: screen.query(ReplyView) and len(screen.query_one(ReplyView).text) > 40)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.streaming)
        stopped = screen.query_one(ReplyView)
        assert stopped.status == "stopped"
        assert len(stopped.text) > 40
        assert "stopped" in str(stopped.query_one(".reply-status").render())
        await ask(pilot, "What is the capital of France? Answer in one word.")
        await wait_until(pilot, lambda: len(screen.query(ReplyView)) == 2 and not screen.streaming)
        assert "Paris" in screen.query(ReplyView).last().text
    store = HistoryStore(paths.history_db_path())
    statuses = [m.status for m in store.messages(store.list_chats()[0].id) if m.role == "assistant"]
    assert statuses == ["stopped", "done"]


async def test_chat_is_in_history_after_restart(gguf_path: Path) -> None:
    app = make_app(gguf_path)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the capital of France? Answer in one word.")
        await wait_until(pilot, lambda: chat(app).query(ReplyView) and not chat(app).streaming)
        first_reply = chat(app).query_one(ReplyView).text

    again = make_app(gguf_path)
    async with again.run_test(size=SIZE) as pilot:
        assert not chat(again).query(ReplyView)  # a restart opens a new chat
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(again.screen, ChatsScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(again.screen, ChatScreen) and again.screen.query(ReplyView))
        screen = chat(again)
        assert [w.text for w in screen.query(UserMessage)] == [
            "What is the capital of France? Answer in one word."
        ]
        assert screen.query_one(ReplyView).text == first_reply
        # and the reopened chat continues
        await ask(pilot, "And of Italy?")
        await wait_until(pilot, lambda: len(screen.query(ReplyView)) == 2 and not screen.streaming)
        assert screen.query(ReplyView).last().text


async def test_reopened_chat_after_restart_does_not_reprocess_its_history(gguf_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    app = make_app(gguf_path)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Tell me three facts about lighthouses, one sentence each.")
        await wait_until(pilot, lambda: chat(app).query(ReplyView) and not chat(app).streaming)
    # leaving the app saved the chat's KV cache
    assert (paths.kv_state_dir() / "chat-1.kv").exists()
    assert "saved KV state chat-1" in caplog.text

    again = make_app(gguf_path)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(again.screen, ChatsScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: "restored KV state chat-1" in caplog.text)
        restored = int(re.search(r"restored KV state chat-1: (\d+) of", caplog.text)[1])
        assert restored > 60
        screen = chat(again)
        await ask(pilot, "Which one is the most famous?")
        await wait_until(pilot, lambda: len(screen.query(ReplyView)) == 2 and not screen.streaming)
        assert screen.query(ReplyView).last().text
        line = re.findall(r"reply \w+: prompt (\d+) tokens \((\d+) evaluated\)", caplog.text)[-1]
        prompt_tokens, evaluated = int(line[0]), int(line[1])
        assert evaluated <= prompt_tokens - restored + 1 and evaluated < 30
        # a new chat saves this one's (longer) state before leaving it
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: caplog.text.count("saved KV state chat-1") == 2)
        # deleting the chat deletes its saved state (it holds the conversation's tokens)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(again.screen, ChatsScreen))
        await pilot.press("d")
        await wait_until(pilot, lambda: not again.store.list_chats())
        assert not (paths.kv_state_dir() / "chat-1.kv").exists()


async def test_message_sent_while_loading_is_answered_after(gguf_path: Path) -> None:
    app = make_app(gguf_path)
    app.session.backend._load_lock.acquire()  # hold the real load until the prompt is in
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = chat(app)
            assert not app.session.backend.loaded
            await ask(pilot, "What is the capital of France? Answer in one word.")
            await pilot.pause(0.2)
            assert screen.streaming and not app.session.backend.loaded
            assert "waits" in str(screen.query_one(StatusBar).render())
            app.session.backend._load_lock.release()
            await wait_until(pilot, lambda: not screen.streaming)
            assert "Paris" in screen.query_one(ReplyView).text
    finally:
        if app.session.backend._load_lock.locked():
            app.session.backend._load_lock.release()


async def test_copy_last_reply_to_clipboard(gguf_path: Path) -> None:
    app = make_app(gguf_path)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the capital of France? Answer in one word.")
        await wait_until(pilot, lambda: chat(app).query(ReplyView) and not chat(app).streaming)
        await pilot.press("ctrl+y")
        assert app.clipboard == chat(app).query_one(ReplyView).text != ""


async def test_copy_focused_code_block(gguf_path: Path) -> None:
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 300}))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Write a Python function that adds two numbers. Use a code block.")
        screen = chat(app)
        await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming)
        from tui.widgets.conversation import CodeBlock

        blocks = screen.query(CodeBlock)
        assert blocks, screen.query_one(ReplyView).text
        blocks.first().focus()
        await pilot.press("c")
        assert app.clipboard == blocks.first().code and "def " in app.clipboard


async def test_model_that_fails_to_load_is_one_notification_and_keeps_the_prompt(
    gguf_path: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(gguf_path.read_bytes()[:3_000_000])
    app = make_app(truncated)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(app)
        await wait_until(pilot, lambda: any(n.title == "Model error" for n in app._notifications))
        await ask(pilot, "Is anyone there?")
        await wait_until(pilot, lambda: not screen.streaming)
        assert screen.query_one(PromptInput).text == "Is anyone there?"
        assert not screen.query(ReplyView) and not screen.query(UserMessage)
        errors = [n for n in app._notifications if n.title == "Model error"]
        assert len(errors) == 2 and "corrupted or incomplete" in errors[0].message
    assert HistoryStore(paths.history_db_path()).list_chats() == []


async def test_context_overflow_is_announced(gguf_path: Path) -> None:
    settings = make_settings(chat={"max_tokens": 40})
    app = make_app(gguf_path, settings)
    app.session.backend._n_ctx = 256  # a small window, before the model loads
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = chat(app)
        told_while_streaming: list[bool] = []
        notify = app.notify

        def recorded(message, *args, **kwargs):
            if kwargs.get("title") == "Context full":
                told_while_streaming.append(screen.streaming)
            return notify(message, *args, **kwargs)
        app.notify = recorded  # (Screen.notify calls App.notify)

        for _ in range(3):
            await ask(pilot, "Describe the weather in detail. " * 12)
            await wait_until(pilot, lambda: not screen.streaming)
        # told once, when the reply ended, not as it started (its layout held the first tokens back)
        assert told_while_streaming == [False]
        assert sum(n.title == "Context full" for n in app._notifications) == 1
        assert len(screen.query(ReplyView)) == 3
        # notifications sit at the top right, over older text, not over the line being written
        app.notify("where am I", timeout=60)
        await wait_until(pilot, lambda: app.screen.query(Toast))
        toast = app.screen.query(Toast).last()
        assert toast.region.y < 4 and toast.region.right > SIZE[0] - 4, toast.region


async def test_scrolling_up_stops_following_and_the_bottom_resumes(gguf_path: Path) -> None:
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 700}, ui={"cpu_budget": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(app)
        conversation = screen.query_one("#conversation")
        await ask(pilot, "Write a very long story about a lighthouse keeper and a storm.")
        await wait_until(pilot, lambda: conversation.max_scroll_y > 8)
        assert conversation.scroll_y == conversation.max_scroll_y  # following the stream
        conversation.focus()
        await pilot.press("pageup", "pageup")
        held = conversation.scroll_y
        await wait_until(pilot, lambda: conversation.max_scroll_y > held + 10 or not screen.streaming)
        assert conversation.scroll_y == held  # the reader's place is kept while text arrives
        await pilot.press("end")
        await pilot.pause(0.3)
        if screen.streaming:
            await wait_until(pilot, lambda: not screen.streaming)
            await pilot.pause(0.3)
        assert conversation.scroll_y == conversation.max_scroll_y  # following again


async def test_quitting_mid_reply_stops_generation_before_freeing_the_model(gguf_path: Path) -> None:
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 800}))
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(app)
        await ask(pilot, "Write a very long story about a lighthouse keeper and a storm.")
        await wait_until(pilot, lambda: screen.query(ReplyView) and len(screen.query_one(ReplyView).text) > 20)
        backend = app.session.backend
    # leaving the block quit the app mid-stream; the model was freed only after the reply stopped
    assert not backend.loaded
    store = HistoryStore(paths.history_db_path())
    (reply,) = [m for m in store.messages(store.list_chats()[0].id) if m.role == "assistant"]
    assert reply.status == "stopped" and reply.content


async def test_a_chat_remembers_its_preset(gguf_path: Path) -> None:
    import dataclasses

    from engine.config import settings_from_dict

    def settings():
        base = make_settings()
        presets = settings_from_dict({"presets": {"terse": {"max_tokens": 4, "system_prompt": "One word."}}})
        return dataclasses.replace(base, presets=presets.presets)

    app = make_app(gguf_path, settings())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"Preset: terse")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.settings.preset == "terse")
        assert app.session.system_prompt == "One word." and app.settings.chat.max_tokens == 4
        await ask(pilot, "What is the capital of France?")
        await wait_until(pilot, lambda: app.session.chat_id is not None and not app.screen.streaming)
        chat = app.session.chat_id
    assert HistoryStore(paths.history_db_path()).chat_preset(chat) == "terse"

    again = make_app(gguf_path, settings())  # a restart: [chat] until the chat is opened
    async with again.run_test(size=SIZE) as pilot:
        assert again.settings.preset == ""
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(again.screen, ChatsScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: again.settings.preset == "terse")
        assert again.session.system_prompt == "One word." and again.settings.chat.max_tokens == 4

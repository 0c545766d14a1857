"""One owner of the backend: the session. Switching the model keeps the chat open, retires the old
backend off the UI thread, and every chat records the model that answered it."""

from __future__ import annotations

from bench.quants import quantized
from tests.apphelpers import ask, make_app, wait_until
from tui.screens.chat import ChatScreen
from tui.widgets.conversation import ReplyView


async def test_switching_models_records_the_model_that_answered(gguf_path) -> None:
    other = quantized(gguf_path, "Q8_0")
    app = make_app(gguf_path)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.screen
        assert isinstance(chat, ChatScreen)
        first = app.session.backend
        await wait_until(pilot, lambda: first.loaded)
        await ask(pilot, "Say hi.")
        await wait_until(pilot, lambda: chat.query(ReplyView) and not chat.streaming)
        first_chat = app.session.chat_id
        assert app.store.get_chat(first_chat).model == gguf_path.stem

        chat.switch_backend(None, model_path=other)
        second = app.session.backend
        assert second is not first and second.model_path == other
        await wait_until(pilot, lambda: second.loaded and not first.loaded)  # retired in a worker
        await ask(pilot, "Say hi again.")  # the same chat, now answered by the other model
        await wait_until(pilot, lambda: len(chat.query(ReplyView)) == 2 and not chat.streaming)
        assert app.session.chat_id == first_chat
        assert app.store.get_chat(first_chat).model == other.stem

        await pilot.press("ctrl+n")
        await ask(pilot, "And hello.")
        await wait_until(pilot, lambda: app.session.chat_id not in (None, first_chat) and not chat.streaming
                         and chat.query(ReplyView))
        assert app.store.get_chat(app.session.chat_id).model == other.stem

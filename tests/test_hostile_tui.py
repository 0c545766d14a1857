"""Hostile text through every path of the TUI, on the real app: a server's model id (status bar)
and reply (reply view), a pasted prompt (user message, chat title in the chats list, rename
field), a server's error body (notification), a local model file's name (model screen, status
bar). No markup is parsed (the literal text shows, nothing crashes), no control character is
drawn; and in a real terminal, the bytes hearth writes hold none of the payload's sequences."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from bench.ptyrun import PtyProcess
from engine import paths
from engine.chat.factory import make_remote
from engine.chat.history import HistoryStore
from engine.config import settings_from_dict
from engine.sanitize import inert
from tests.apphelpers import ask, wait_until
from tests.hostile import PAYLOADS, file_safe, forbidden_in
from tests.servers import MisbehavingServer
from tui.app import HearthApp
from tui.screens.chats import ChatsScreen, RenameScreen
from tui.screens.models import ModelsScreen
from tui.widgets.conversation import ReplyView, UserMessage
from tui.widgets.status_bar import StatusBar

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def servers(request):
    payload = PAYLOADS[request.node.callspec.params["name"]][0]
    reply, error = MisbehavingServer("hostile-reply", payload=payload), MisbehavingServer("hostile-error", payload=payload)
    yield reply, error
    reply.close()
    error.close()


def _option_texts(screen) -> list[str]:
    options = screen.query_one("OptionList")
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


@pytest.mark.parametrize("name", list(PAYLOADS))
async def test_hostile_text_reaches_the_tui_inert(name: str, servers, gguf_path: Path) -> None:
    payload, _ = PAYLOADS[name]
    one_line = inert(payload, one_line=True)
    reply_server, error_server = servers
    settings = settings_from_dict({"chat": {"temperature": 0.0},
                                   "endpoints": {"lab": {"url": reply_server.url},
                                                 "bad": {"url": error_server.url}}})
    own = shutil.copy(gguf_path, paths.models_dir() / f"{file_safe(payload)}.gguf")
    app = HearthApp(settings, make_remote(settings, "lab"), HistoryStore(paths.history_db_path()))
    async with app.run_test(size=(120, 30)) as pilot:
        chat = app.screen
        status = chat.query_one(StatusBar)
        # 1. the server's model id in the status bar
        await wait_until(pilot, lambda: app.session.backend.loaded and status.state == "ready")
        shown = str(status.render())
        assert one_line in shown and not forbidden_in(shown)
        # 2. a pasted prompt (user message) and 3. the server's reply
        await ask(pilot, payload)
        await wait_until(pilot, lambda: chat.query(ReplyView) and not chat.streaming)
        sent = chat.query_one(UserMessage)  # as the prompt sent it (a TextArea keeps one newline style)
        user = str(sent.render())
        assert inert(sent.text.strip()) in user and not forbidden_in(user)
        reply = chat.query_one(ReplyView)
        assert reply.text == inert(payload)
        drawn = app.export_screenshot()
        assert not forbidden_in(drawn)
        # 4. the chat's title in the chats list, and 5. in the rename field
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        titles = _option_texts(app.screen)
        assert any(inert(" ".join(payload.split())[:48], one_line=True) in t for t in titles), titles
        assert not any(forbidden_in(t) for t in titles)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen))
        field = app.screen.query_one("Input").value
        assert not forbidden_in(field)
        await pilot.press("escape")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is chat)
        # 6. a server's error body in a notification
        chat.switch_backend("bad")
        await wait_until(pilot, lambda: app.session.backend.loaded)
        await ask(pilot, "again")
        await wait_until(pilot, lambda: any("answered 500" in n.message for n in app._notifications))
        await pilot.pause(0.1)  # the toast is drawn
        for note in app._notifications:
            assert not forbidden_in(note.message) and not forbidden_in(note.title)
        assert not forbidden_in(app.export_screenshot())
        # 7. a local model's file name: the model screen, then the status bar once chosen
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listed)
        rows = _option_texts(app.screen)
        assert any(inert(file_safe(payload), one_line=True) in row for row in rows), rows
        assert not any(forbidden_in(row) for row in rows)
        key = next(k for k, p in app.screen._local.items() if p == own)
        options = app.screen.query_one("OptionList")
        options.highlighted = options.get_option_index(key)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.backend.model_path == own and app.session.backend.loaded)
        shown = str(status.render())
        assert inert(Path(file_safe(payload)).stem, one_line=True)[:20] in shown and not forbidden_in(shown)


@pytest.mark.terminal
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_hostile_bytes_never_reach_a_real_terminal(name: str, tmp_path: Path) -> None:
    """hearth in a real pseudo-terminal chatting with a hostile server: its model id in the status
    bar and its reply in the chat; the bytes written hold none of the payload's sequences."""
    payload, markers = PAYLOADS[name]
    server = MisbehavingServer("hostile-reply", payload=f"START {payload} END")
    config = tmp_path / "config.toml"
    config.write_text(f'[endpoints.lab]\nurl = "{server.url}"\n')
    env = {**os.environ, "HEARTH_CONFIG": str(config), "TERM": "xterm-256color",
           **{k: str(tmp_path / k.lower()) for k in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}}
    term = PtyProcess([sys.executable, "-m", "tui.cli", "--endpoint", "lab"], env, rows=24, cols=100)
    try:
        term.wait_for(b"sk anything", timeout=30)  # the placeholder (its first cell is the cursor)
        term.write(b"hi\r")
        term.wait_for(b"TTFT", timeout=30)  # the status bar after the reply
        time.sleep(0.3)
        written = term._tail
    finally:
        term.close()
        server.close()
    assert b"Traceback" not in written
    for marker in markers:
        assert marker not in written, marker
    if forbidden_in(payload):
        assert payload.encode() not in written
    else:  # printable (markup): shown as it is, not parsed
        assert payload[:12].encode() in written

"""A GGUF with no chat template (a base model: the real Gemma 3 270M): one clear notice, in the
CLI and the TUI, and the reply ends at the ChatML markers hearth frames the chat with, instead of
writing them out until max_tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.chat.stop_text import StopText
from tests.apphelpers import ask, make_app, make_settings, wait_until
from tui.screens.chat import ChatScreen
from tui.widgets.conversation import ReplyView

pytestmark = pytest.mark.model

MARKERS = ("<|im_end|>", "<|im_start|>")


@pytest.mark.parametrize("pieces, shown", [
    (["Hello", " world"], "Hello world"),
    (["Paris<|im_end|>\nmore"], "Paris"),
    (["Paris", "<|im", "_end|>", "more"], "Paris"),
    (["a <", "b"], "a <b"),  # held back only while it could be a marker
    (["x<|im_st", "art|>assistant"], "x"),
    (["tail <|im_"], "tail <|im_"),  # the reply ended: what was held is shown
])
def test_stop_text(pieces: list[str], shown: str) -> None:
    stop = StopText(MARKERS)
    out = "".join(stop.feed(piece) for piece in pieces) + stop.flush()
    assert out == shown


def test_ask_on_a_base_model_says_so_once_and_stops_at_the_markers(gemma_path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path / "d"),
           "XDG_STATE_HOME": str(tmp_path / "s")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("hearth")), "ask", "--model", str(gemma_path), "--n-ctx", "1024",
         "--max-tokens", "200", "--temperature", "0", "What is the capital of France?"],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "no chat template" in line]
    assert len(notices) == 1 and "base model" in notices[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not any(marker in done.stdout for marker in MARKERS), done.stdout


async def test_tui_on_a_base_model_notifies_and_the_reply_has_no_markers(gemma_path: Path) -> None:
    app = make_app(gemma_path, make_settings(chat={"max_tokens": 120}))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_until(pilot, lambda: any("no chat template" in n.message for n in app._notifications),
                         timeout=120)
        await ask(pilot, "What is the capital of France?")
        await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming, timeout=300)
        reply = screen.query_one(ReplyView)
        assert reply.status == "done"
        assert not any(marker in reply.text for marker in MARKERS), reply.text
        notices = [n for n in app._notifications if "no chat template" in n.message]
        assert len(notices) == 1

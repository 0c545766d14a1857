"""Each token's time in the TUI, written down for bench/smooth_stream.py's interleaved tokens/s
ratio (tui.token_times): off unless asked, a JSON line per reply, and the real app with it on."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import pytest

from tests.apphelpers import ask, make_app, make_settings, wait_until
from tui.screens.chat import ChatScreen
from tui.token_times import ENV, TokenTimes


@pytest.mark.parametrize("value", [None, ""])
def test_off_unless_the_environment_names_a_file(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    assert TokenTimes.from_env() is None


def test_a_json_line_per_reply_each_started_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "times"))
    times = TokenTimes.from_env()
    assert times is not None
    for now in (10.0, 10.25, 10.5):
        times.token(now)
    times.report()
    times.token(20.0)
    times.report()
    times.report()  # a reply that ended before its first token
    lines = (tmp_path / "times").read_text().split("\n")
    assert [json.loads(line) for line in lines[:-1]] == [[10.0, 10.25, 10.5], [20.0], []]
    assert lines[-1] == ""  # every line ended


def test_a_file_it_cannot_write_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    times = TokenTimes(tmp_path / "no-such-folder" / "times")
    times.token(1.0)
    times.report()
    assert "token times not written" in caplog.text


@pytest.mark.model
async def test_the_app_writes_the_time_of_every_token_of_a_reply(
        gguf_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    written = tmp_path / "times"
    monkeypatch.setenv(ENV, str(written))
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 60}))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_until(pilot, lambda: screen.app.session.backend.loaded)
        asked = time.monotonic()
        await ask(pilot, "Write a long story about a lighthouse keeper and a storm.")
        await wait_until(pilot, lambda: written.exists() and written.read_text().endswith("\n"))
        ended = time.monotonic()
    times = json.loads(written.read_text())
    tokens = int(re.search(r"generated (\d+) tokens", caplog.text)[1])
    assert len(times) == tokens > 10
    assert asked < times[0] and times == sorted(times) and times[-1] < ended

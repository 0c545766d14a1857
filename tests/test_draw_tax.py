"""The in-process measure of what drawing a reply costs generation (tui.draw_tax), which
bench/smooth_stream.py reads from the log: phases, intervals, the log line, and the real app
with it on (half the reply not streamed, the whole reply shown at its end)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.apphelpers import ask, make_app, make_settings, wait_until
from tui.draw_tax import ENV, DrawTax
from tui.draw_tax import LOG_LINE as DRAW_TAX_LOG
from tui.screens.chat import ChatScreen
from tui.widgets.conversation import ReplyView


@pytest.mark.parametrize(("value", "period"), [(None, None), ("", None), ("0", None), ("-1", None),
                                               ("half", None), ("0.5", 0.5), ("2", 2.0)])
def test_only_a_positive_period_in_the_environment_turns_it_on(
        value: str | None, period: float | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    tax = DrawTax.from_env()
    assert (tax.period_s if tax else None) == period


@pytest.mark.parametrize(("now", "drawing"), [(0.0, True), (0.49, True), (0.5, False), (0.99, False),
                                              (1.0, True), (100.25, True), (100.75, False)])
def test_phases_alternate_drawing_first(now: float, drawing: bool) -> None:
    assert DrawTax(0.5).drawing(now) is drawing


def test_each_interval_counts_in_the_phase_it_began_in(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hearth.draw_tax")
    tax = DrawTax(0.5)
    # drawing phase [100.0, 100.5): intervals of 10 ms; the one from 100.49 ends in the next phase
    for now in (100.0, 100.01, 100.02, 100.49, 100.51, 100.55, 101.15):
        tax.token(now)
    tax.report()
    drawn, drawn_ms, quiet, quiet_ms = DRAW_TAX_LOG.search(caplog.text).groups()
    # while drawing: 10, 10, 470, 20 ms (the last began at 100.49); while not: 40 and 600 ms (a
    # long one counts too: a frame that held generation up is part of what drawing costs)
    assert (int(drawn), int(quiet)) == (4, 2)
    assert float(drawn_ms) == pytest.approx(127.5)
    assert float(quiet_ms) == pytest.approx(320.0)
    caplog.clear()
    tax.report()  # started anew: nothing to tell
    assert "draw tax" not in caplog.text


@pytest.mark.model
async def test_the_app_streams_every_other_phase_and_shows_the_whole_reply_at_its_end(
        gguf_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv(ENV, "0.2")
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 150}))
    streamed: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        arrived = screen._chunk_arrived

        def recorded(text, stats, batches=1, number=0):
            streamed.append(text)
            arrived(text, stats, batches, number)
        monkeypatch.setattr(screen, "_chunk_arrived", recorded)
        await wait_until(pilot, lambda: screen.app.session.backend.loaded)
        await ask(pilot, "Write a long story about a lighthouse keeper and a storm.")
        await wait_until(pilot, lambda: "draw tax" in caplog.text and not screen.streaming)
        reply = screen.query_one(ReplyView)
        generated, shown = reply.text, reply.markdown.source
    match = DRAW_TAX_LOG.search(caplog.text)
    assert match and int(match[1]) > 0 and int(match[3]) > 0, caplog.text
    tokens = int(re.search(r"generated (\d+) tokens", caplog.text)[1])
    assert int(match[1]) + int(match[3]) == tokens - 1  # every interval, in one phase or the other
    assert streamed and len("".join(streamed)) < len(generated)  # the quiet phases were not drawn
    assert shown == generated and len(generated) > 200  # all of it at the end

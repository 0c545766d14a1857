"""A reply streaming in a real terminal, for tests/test_terminal.py: the tail's lines go to the
terminal through tui.widgets.direct_draw (whole lines, the cells a token adds, or those a word
that wraps changes on two lines), and the test compares the screen with the one Textual's own full
repaint draws. A status bar under the conversation shows figures that change with each word
(longer and shorter), written through its changed cells. ctrl+t shows a notification (drawn over
the reply), ctrl+s starts the stream (or goes on with it), ctrl+l repaints the whole screen, ctrl+u scrolls
the conversation up three lines, ctrl+k to its fifth line, and ctrl+e changes the message at its top,
then scrolls a line (each writes the counts below). The
stream pauses after a frame in which the terminal moved the conversation's lines
(tui.widgets.terminal_scroll), at most every :data:`PAUSE_EVERY` tokens, so the test can compare
that screen too. At each pause and at the end, how many draws of each kind went to the terminal
directly is written to argv[1] (JSON; "status": the status bar's; "scrolls": the frames that
moved lines; "done" at the end), and, as the test's own check of where cells land, how many token
cells were aimed at screen cells a notification covers and how many of those were written anyway
(over it). With argv[2] "thread", the words come from a thread as a reply's tokens do: the thread
writes those that only lengthen the last line itself (tui.typing_lane) and hands the rest to the
UI without waiting for it, as the chat screen's generation thread does; the counts then also say
whether the reply's text so far is every word in order ("text_so_far"). With argv[3] "miswrap"
as well, the thread wraps lines ten cells short of the reply's width (the reply draws them
again)."""

import asyncio
import json
import sys
import threading
from pathlib import Path

from textual.app import App, ComposeResult
from textual.driver import Driver
from textual.geometry import Region
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets._toast import Toast

import tui.widgets.status_bar as status_bar
import tui.widgets.stream_tail as stream_tail
from engine.chat.backend import ModelInfo
from tui.input_driver import QuietLinuxDriver
from tui.widgets.conversation import Conversation, ReplyView, UserMessage
from tui.widgets.status_bar import StatusBar
from tui.widgets.terminal_scroll import TerminalScrollScreen

TOKENS = [token for n in range(1, 400) for token in
          (["wo", f"rd{n} "] if n % 3 == 0 else
           [f"word{n}" + (",\nand" if n % 37 == 0 else "") + ("." if n % 53 == 0 else " ")])
          + (["\n", "\n"] if n % 53 == 0 else [])] + ["THE-END"]
"""Words, a line break inside some, paragraph breaks as two tokens that are only newlines (they
move the tail's cursor), and every third word in two tokens (its start at the end of a line moves
to the next when the rest comes)."""


PAUSE_EVERY = 40
"""Tokens at least between two pauses of the stream."""


class StreamScreen(TerminalScrollScreen):
    SCROLLED_BY_TERMINAL = Conversation

    def before_frame(self) -> None:  # (as the chat screen's)
        self.app.reply.close_lane()

    def after_frame(self) -> None:  # (as the chat screen's)
        lane = self.app._driver.lane
        was_open = lane.is_open
        self.app.reply.reopen_lane()
        self.app.drawn["reopened"] += lane.is_open and not was_open

    def _scroll_terminal(self) -> str:
        sequence = super()._scroll_terminal()
        self.app.drawn["scrolls"] += bool(sequence)
        self.app.scrolled_last = bool(sequence)
        return sequence


class StreamApp(App[None]):
    BINDINGS = [("ctrl+t", "toast"), ("ctrl+s", "stream"), ("ctrl+l", "repaint"), ("ctrl+u", "scroll_up"),
                ("ctrl+k", "near_top"), ("ctrl+e", "edit")]

    def __init__(self, count_file: Path, threaded: bool) -> None:
        super().__init__()
        self.count_file = count_file
        self.threaded = threaded
        """Whether the words come from a thread, as a reply's tokens do, which writes those that
        only lengthen the last line itself (tui.typing_lane), and hands the UI the rest."""
        self.go = threading.Event()
        self.scrolled_last = False
        """Whether the terminal moved the conversation's lines in the last frame."""
        self.since_pause = 0
        self.timer: Timer | None = None
        self.drawn = {"done": False, "scrolls": 0, "lines": 0, "cells": 0, "spans": 0, "aimed_under_toast": 0, "over_toast": 0, "status": 0, "lane": 0,
                      "lane_wraps": 0, "miswrapped": 0, "reopened": 0}
        self.words = list(TOKENS)

    def get_default_screen(self) -> StreamScreen:
        return StreamScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield Conversation()
        yield StatusBar()

    async def on_mount(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.reply = ReplyView("", "streaming")
        conversation = self.query_one(Conversation)
        await conversation.add(UserMessage("MARK-0"), self.reply)
        conversation.anchor()  # follow the end, as the chat screen's conversation does
        await self.reply.start_stream()
        self.query_one(StatusBar).set_model(ModelInfo(name="a-model", quantization="Q4_1", n_ctx=2048),
                                            "ready")

    def action_toast(self) -> None:
        self.notify("A-NOTICE over the reply", timeout=600)

    def get_driver_class(self) -> type[Driver]:
        return QuietLinuxDriver  # (hearth's, with its lane)

    def action_stream(self) -> None:
        if self.threaded:
            if not self.go.is_set():
                self.go.set()
                if self.timer is None:  # (a stand-in: the thread runs the stream)
                    self.timer = self.set_timer(3600, lambda: None)
                    threading.Thread(target=self.generate, daemon=True).start()
            return
        if self.timer is None:
            self.timer = self.set_interval(0.01, self.next_word)
        else:
            self.timer.resume()

    def action_scroll_up(self) -> None:
        self.query_one(Conversation).scroll_relative(y=-3, animate=False)
        self.set_timer(0.3, self.write_counts)

    def action_near_top(self) -> None:
        self.query_one(Conversation).scroll_to(y=4, animate=False)
        self.set_timer(0.3, self.write_counts)

    def action_edit(self) -> None:
        """The message at the top changes, and the conversation scrolls a line (Textual draws
        the change in a frame of its own first, then the scroll)."""
        self.query_one(UserMessage).update("MARK-1", layout=False)
        self.query_one(Conversation).scroll_relative(y=-1, animate=False)
        self.set_timer(0.3, self.write_counts)

    def write_counts(self) -> None:
        self.reply.close_lane()
        self.drawn["lane_wraps"] = self._driver.lane.wraps
        self.drawn["text_so_far"] = self.reply.text == "".join(TOKENS[:len(TOKENS) - len(self.words)])
        # written whole, then renamed: the test polls for the file and must never read it half-written
        partial = self.count_file.with_suffix(".partial")
        partial.write_text(json.dumps(self.drawn))
        partial.replace(self.count_file)

    def action_repaint(self) -> None:
        self.screen.refresh()
        for widget in self.screen.walk_children():
            widget.refresh()

    def generate(self) -> None:
        """(On a thread) Each word: written by the lane when it can, else handed to the UI;
        pausing as :meth:`next_word` does."""
        lane = self._driver.lane
        while self.words:
            self.go.wait()
            if self.scrolled_last and self.since_pause >= PAUSE_EVERY:
                self.go.clear()
                self.since_pause = 0
                self.call_from_thread(self.write_counts)
                continue
            self.since_pause += 1
            word = self.words.pop(0)
            if lane.write(word):
                self.drawn["lane"] += 1
            else:  # (not waiting for it: the chat screen's thread does not either)
                self.loop.call_soon_threadsafe(self.hand_word, word, lane.hand_over())
            threading.Event().wait(0.003)
        self.drawn["done"] = True
        self.call_from_thread(self.write_counts)

    def hand_word(self, word: str, number: int) -> None:
        self._driver.lane.drawn(number)
        self.reply.write(word)
        self.show_figures()

    def show_figures(self) -> None:
        # the figures get longer and shorter; the last three: 1234 tok/s, 7 tok/s (shorter:
        # blanks), 9 tok/s (as long: from the changed digit of ctx to that of tok/s)
        bar = self.query_one(StatusBar)
        left = len(self.words)  # (once: a thread may be taking words meanwhile)
        bar.ctx_used = len(TOKENS) - left
        bar.tokens_per_s = {0: 9.0, 1: 7.0, 2: 1234.0}.get(left, [5.0, 1234.0, 50.0, 7.0][left % 4])
        bar.refresh_text(at_once=True)

    async def next_word(self) -> None:
        if self.scrolled_last and self.since_pause >= PAUSE_EVERY and self.words:
            assert self.timer is not None
            self.timer.pause()
            self.since_pause = 0
            self.write_counts()
            return
        if self.words:
            self.since_pause += 1
            self.reply.write(self.words.pop(0))
            self.show_figures()
            if not self.words:
                self.drawn["done"] = True
                self.write_counts()


if __name__ == "__main__":
    app = StreamApp(Path(sys.argv[1]), sys.argv[2:3] == ["thread"])
    if sys.argv[3:] == ["miswrap"]:  # the thread's wrapping ten cells short of the reply's
        split = stream_tail._split

        def miswrap(width: int, source: str) -> list[str]:
            lines = split(width - 10, source)
            app.drawn["miswrapped"] += len(lines) == 2 and lines != split(width, source)  # (the lane draws 2)
            return lines

        stream_tail._split = miswrap
    draw_now, draw_text, draw_spans = stream_tail.draw_now, stream_tail.draw_text, stream_tail.draw_spans
    draw_cells = status_bar.draw_cells

    def counted_lines(widget: Widget, first: int, count: int) -> bool:
        drawn = draw_now(widget, first, count)
        app.drawn["lines"] += drawn
        return drawn

    def under_toast(widget: Widget, y: int, x: int, cells: int) -> bool:
        """Whether the screen cells of content line y, cells x.., of the widget are under a
        notification (worked out here from the compositor's map, apart from direct_draw's)."""
        visible = app.screen._compositor.visible_widgets
        if widget not in visible:
            return False
        region, _ = visible[widget]
        offset = widget.content_offset
        aimed = Region(region.x + offset.x + x, region.y + offset.y + y, cells, 1)
        return any(isinstance(other, Toast) and aimed.overlaps(other_region.intersection(clip))
                   for other, (other_region, clip) in visible.items())

    def counted_cells(widget: Widget, y: int, x: int, cells: int, rendered: str) -> bool:
        under = under_toast(widget, y, x, cells)
        drawn = draw_text(widget, y, x, cells, rendered)
        app.drawn["cells"] += drawn
        app.drawn["aimed_under_toast"] += under
        app.drawn["over_toast"] += drawn and under
        return drawn

    def counted_spans(widget: Widget, spans: list[tuple[int, int, Strip]]) -> bool:
        under = any(under_toast(widget, y, x, cells.cell_length) for y, x, cells in spans)
        drawn = draw_spans(widget, spans)
        app.drawn["spans"] += drawn
        app.drawn["aimed_under_toast"] += under
        app.drawn["over_toast"] += drawn and under
        return drawn

    def counted_status(widget: Widget, y: int, x: int, cells: Strip) -> bool:
        drawn = draw_cells(widget, y, x, cells)
        app.drawn["status"] += drawn
        return drawn

    stream_tail.draw_now, stream_tail.draw_text, stream_tail.draw_spans = counted_lines, counted_cells, counted_spans
    status_bar.draw_cells = counted_status
    app.run()

"""A reply streaming in a real terminal, for tests/test_terminal.py: the tail's lines go to the
terminal through tui.widgets.direct_draw (whole lines, or only the cells a token adds), and the
test compares the screen with the one Textual's own full repaint draws. ctrl+t shows a
notification (drawn over the reply), ctrl+s starts the stream, ctrl+l repaints the whole screen.
How many draws of each kind went to the terminal directly is written to argv[1] (JSON)."""

import json
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget

import tui.widgets.stream_tail as stream_tail
from tui.widgets.conversation import Conversation, ReplyView

TOKENS = [token for n in range(1, 400) for token in
          [f"word{n}" + (",\nand" if n % 37 == 0 else "") + ("." if n % 53 == 0 else " ")]
          + (["\n", "\n"] if n % 53 == 0 else [])] + ["THE-END"]
"""Words, a line break inside some, and paragraph breaks as two tokens that are only newlines
(they move the tail's cursor)."""


class StreamApp(App[None]):
    BINDINGS = [("ctrl+t", "toast"), ("ctrl+s", "stream"), ("ctrl+l", "repaint")]

    def __init__(self, count_file: Path) -> None:
        super().__init__()
        self.count_file = count_file
        self.drawn = {"lines": 0, "cells": 0}
        self.words = list(TOKENS)

    def compose(self) -> ComposeResult:
        yield Conversation()

    async def on_mount(self) -> None:
        self.reply = ReplyView("", "streaming")
        conversation = self.query_one(Conversation)
        await conversation.add(self.reply)
        conversation.anchor()  # follow the end, as the chat screen's conversation does
        await self.reply.start_stream()

    def action_toast(self) -> None:
        self.notify("A-NOTICE over the reply", timeout=600)

    def action_stream(self) -> None:
        self.set_interval(0.01, self.next_word)

    def action_repaint(self) -> None:
        self.screen.refresh()
        for widget in self.screen.walk_children():
            widget.refresh()

    async def next_word(self) -> None:
        if self.words:
            self.reply.write(self.words.pop(0))
            if not self.words:
                self.count_file.write_text(json.dumps(self.drawn))


if __name__ == "__main__":
    app = StreamApp(Path(sys.argv[1]))
    draw_now, draw_cells = stream_tail.draw_now, stream_tail.draw_cells

    def counted_lines(widget: Widget, first: int, count: int) -> bool:
        drawn = draw_now(widget, first, count)
        app.drawn["lines"] += drawn
        return drawn

    def counted_cells(widget: Widget, y: int, x: int, cells: Strip) -> bool:
        drawn = draw_cells(widget, y, x, cells)
        app.drawn["cells"] += drawn
        return drawn

    stream_tail.draw_now, stream_tail.draw_cells = counted_lines, counted_cells
    app.run()

"""One line of facts about the model and the last reply. Updated on events, never polled."""

from __future__ import annotations

import os
import time

import psutil
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.content import Content
from textual.strip import Strip
from textual.widget import Widget

from engine.chat.backend import ModelInfo, TokenEvent
from engine.sanitize import inert
from tui.widgets.direct_draw import draw_cells, draw_now, style_on_screen

_PROCESS = psutil.Process(os.getpid())
LIVE_EVERY_S = 0.5
"""Seconds between redraws of the live figures while a reply streams."""


def process_rss_mib() -> float:
    """Resident set size of this process in MiB (2**20 bytes)."""
    return _PROCESS.memory_info().rss / 2**20


class StatusBar(Widget):
    """``model quant │ ctx used/size │ tok/s │ TTFT │ memory``: one line of inert text."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._line = ""
        """The text shown (inert, one line)."""
        self._drawn: str | None = None
        """The text on screen, when it is known to be (None: a frame is due to draw ``_line``)."""
        self._styles: tuple[Style, Style] | None = None
        """The text's and the blank cells' styles as the widget's rendering draws them (line
        filters applied), for :meth:`_draw_changed`; None until read from a rendered line."""
        self.model = ""
        self.state = "no model"
        self.ctx_used = 0
        self.n_ctx = 0
        self.tokens_per_s: float | None = None
        self.ttft_s: float | None = None
        self.memory_mib = process_rss_mib()
        self._live_shown = 0.0
        """``time.monotonic()`` of the last redraw of live figures."""

    def set_model(self, info: ModelInfo, state: str) -> None:
        """Show the model and its state ("loading", "ready", ...)."""
        quant = info.quantization
        self.model = info.name if not quant or quant in info.name else f"{info.name} {quant}"
        self.n_ctx = info.n_ctx
        self.state = state
        self.memory_mib = process_rss_mib()
        self.refresh_text()

    def set_state(self, state: str) -> None:
        self.state = state
        self.refresh_text()

    def set_reply_stats(self, event: TokenEvent) -> None:
        """Show the figures of the reply that just ended."""
        self.ctx_used = event.n_prompt_tokens + event.n_generated
        self.tokens_per_s = event.tokens_per_s
        self.ttft_s = event.ttft_s
        self.memory_mib = process_rss_mib()
        self.refresh_text()

    def set_live_stats(self, event: TokenEvent) -> None:
        """Show the figures of the reply being streamed (context used, tokens/s so far, TTFT),
        written to the terminal at once (tui.widgets.direct_draw), at most every
        :data:`LIVE_EVERY_S`: a figure changing 15 times a second cannot be read."""
        self.ctx_used = event.n_prompt_tokens + event.n_generated
        self.tokens_per_s = event.tokens_per_s
        self.ttft_s = event.ttft_s
        now = time.monotonic()
        if now - self._live_shown >= LIVE_EVERY_S:
            self._live_shown = now
            self.refresh_text(at_once=True)

    def refresh_text(self, at_once: bool = False) -> None:
        """Redraw the line from the figures held: in the next frame, or ``at_once`` (written to
        the terminal now when nothing is drawn over it)."""
        parts = [self.model or "no model"]
        if self.state != "ready":
            parts.append(self.state)
        if self.n_ctx:
            parts.append(f"ctx {self.ctx_used}/{self.n_ctx}")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.0f} tok/s")
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s:.2f}s")
        parts.append(f"{self.memory_mib:.0f} MiB")
        shown, self._line = self._drawn, inert(" │ ".join(parts), one_line=True)  # names from files and servers
        if at_once and (self._draw_changed(shown) or draw_now(self, 0, 1)):
            self._drawn = self._line
        else:
            self._drawn = None
            self.refresh()

    def _draw_changed(self, shown: str | None) -> bool:
        """Write only the cells in which ``_line`` differs from ``shown``, the text on screen: the
        live figures change a few digits of the line, and rendering and writing the whole line
        through Textual's styles cost ~0.9 ms each time, a fifth of the UI thread's CPU while a
        reply streamed at a Pi-class rate (bench/smooth_stream.py). False (nothing written) when
        the text on screen is unknown, either text does not fit the line, or the cells cannot be
        written directly (tui.widgets.direct_draw.draw_cells)."""
        new, width = self._line, self.content_size.width
        if shown is None or not new or cell_len(new) >= width or cell_len(shown) >= width:
            return False
        if self._styles is None:
            text, blank = style_on_screen(self, 0, 0), style_on_screen(self, 0, width - 1)
            if text is None or blank is None:
                return False
            self._styles = (text, blank)
        if shown == new:
            return True
        text_style, blank_style = self._styles
        start = 0  # the first character that changed
        while start < min(len(shown), len(new)) and shown[start] == new[start]:
            start += 1
        same_end = 0  # characters at the end that stay in their cells
        if cell_len(shown) == cell_len(new):
            while same_end < min(len(shown), len(new)) - start \
                    and shown[-1 - same_end] == new[-1 - same_end]:
                same_end += 1
        segments = [Segment(new[start:len(new) - same_end], text_style)]
        if cell_len(shown) > cell_len(new):  # blank what the longer text took
            segments.append(Segment(" " * (cell_len(shown) - cell_len(new)), blank_style))
        return draw_cells(self, 0, cell_len(new[:start]), Strip(segments).simplify())

    def notify_style_update(self) -> None:
        self._styles = None
        super().notify_style_update()

    def render(self) -> Content:
        return Content(self._line)

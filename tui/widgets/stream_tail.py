"""The growing end of a streaming reply, drawn cheaply.

A streaming reply is two parts. What is *settled* (complete Markdown blocks: everything up to a
blank line outside a code fence, or up to a closing fence) goes to the reply's Markdown widget,
which parses and lays it out once per block. The rest, the block still being written, is a
:class:`StreamTail`: plain text, wrapped once per line of source, with only the last two screen
lines of the line being written re-wrapped when tokens arrive, and the screen lines that changed
written straight to the terminal (tui.widgets.direct_draw), not through a Textual frame; a token
that only lengthens the last line (most do) is not wrapped at all, and only its own cells are
written; for one that wraps (or a newline), only the cells it changes on the lines it changes.
A layout runs only when the text reaches the last line of the room the tail keeps below it
(every :data:`RESERVE_LINES` lines), after that line is drawn. A :data:`CURSOR` after the text
shows where the next token goes, so a token that is only a newline or a space shows too. When the reply
ends, the whole text is rendered as Markdown once (tui.widgets.conversation.ReplyView.finish), so
the final view is exactly the Markdown of the generated text.

Text reaching the tail is already inert (engine.sanitize): this widget never parses markup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import partial

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from tui.typing_lane import TypingLane, Wrapping
from tui.widgets.direct_draw import draw_now, draw_spans, draw_text, open_lane, style_on_screen
from tui.widgets.layout_size import keeps_lines_when_taller, set_by_layout

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
"""A fence line (CommonMark 4.5: up to three spaces, then three or more backticks or tildes)."""


def settled_length(text: str) -> int:
    """Characters at the start of ``text`` that form complete Markdown blocks.

    A block is complete after a blank line that is outside a fenced code block, and after the line
    that closes a fence (CommonMark 0.31, sections 4.5 and 4.9). Cutting there never splits a
    fence; a list or quote split at a blank line between items is joined again by the Markdown
    widget, which re-parses from the start of its last block when text is appended.

    Args:
        text: the unsettled text of a reply (str, any length).

    Returns:
        An offset into ``text`` (0..len(text)) that is 0 or just after a newline.
    """
    settled = 0
    fence: str | None = None  # the opening run of backticks/tildes while inside a fence
    position = 0
    for line in text.splitlines(keepends=True):
        position += len(line)
        if not line.endswith("\n"):
            break  # a line still being written settles nothing
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
            elif not line.strip():
                settled = position
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                and not line[match.end():].strip():
            fence = None
            settled = position
    return settled


CURSOR = "▌"
"""Drawn after the text while a reply streams, where the next token will go. A token that is a
newline or a space moves it, so every token changes the screen: without it the two newline tokens
of a paragraph break drew nothing, and at a Pi-class 15 tokens/s the first word of the next
paragraph came three token times (200 ms) after the last visible change (bench/smooth_stream.py's
longest gaps). The terminal's own cursor does this for llama-cli and `ollama run`; Textual hides
it."""

_CURSOR_CELLS = cell_len(CURSOR)

RESERVE_LINES = 4
"""Blank lines the tail keeps below its last line while it grows: a new line is drawn into them
without a layout of the screen (which costs as much as several redraws, and in a conversation
scrolled to its end repaints every line of it). When the text reaches the last of them, that line
is drawn first and then the tail grows by this many more at once: a layout every fourth line
instead of every line, and it runs while the next token is generated, not between the token
that needed it and the screen (at a Pi-class share of a core a layout takes 100-200 ms of wall
time: bench/smooth_stream.py)."""


def _plain(line: Strip) -> str | None:
    """``line``'s characters when it is one run of printable ASCII in one style, else None."""
    text = line.text
    if not (text.isascii() and text.isprintable()) or len({segment.style for segment in line}) > 1:
        return None
    return text


def _split(width: int, source: str) -> list[str]:
    """``source`` wrapped to ``width`` cells as :meth:`StreamTail._wrap` wraps it: each line's
    characters (for tui.typing_lane, on the generation thread)."""
    return [line.plain for line in Content(source).wrap(width)]


class _Typing:
    """The last line of a :class:`StreamTail` while tokens lengthen it in place: what drawing
    one needs, worked out once per line (:meth:`StreamTail._start_typing`)."""

    __slots__ = ("line", "row", "cells", "ansi", "typed")

    def __init__(self, line: Strip, row: int, cells: int, ansi: tuple[str, str]) -> None:
        self.line = line
        """The line as the tail holds it, without :attr:`typed`: when anything else replaces
        it (a re-wrap, a new width, new text), this record no longer applies."""
        self.row = row
        """Its content line."""
        self.cells = cells
        """Its length on screen, cells (with :attr:`typed`)."""
        self.ansi = ansi
        """The escape sequences before and after text drawn in the text's style on screen."""
        self.typed = ""
        """Text drawn after :attr:`line` and not in it yet (:meth:`StreamTail._join_typed`)."""


@keeps_lines_when_taller
class StreamTail(Widget):
    """Plain text that grows at its end, redrawn a line at a time, with room for
    :data:`RESERVE_LINES` more lines below it (from the start when :meth:`reset` asks for it, as
    a streaming reply does; otherwise once it has grown past its first line).

    Attributes:
        text: the text shown (str).
        cursor: whether :data:`CURSOR` is drawn after the text (bool; not after a placeholder).
    """

    DEFAULT_CSS = """
    StreamTail { height: auto; padding: 0 1 0 2; }
    """

    virtual_size = set_by_layout()
    """No second layout or repaint when the tail grows (tui.widgets.layout_size)."""

    def __init__(self, on_typed: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.on_typed = on_typed
        """Called with the text the generation thread drew (tui.typing_lane) as this tail takes
        it (:meth:`close_lane`), before anything else changes."""
        self.text = ""
        self.cursor = False
        self._sources: list[str] = [""]
        """The text split at newlines: the last one is the line being written."""
        self._lines: list[list[Strip]] = [[]]
        """Each source line wrapped to ``self._width`` cells, but for the text drawn in place
        since the last line was made (:attr:`_wrapped` joins it)."""
        self._kept = 0
        """Wrapped lines at the start of the last source line that text appended to it can no
        longer change (all but its last two: wrapping is greedy, so only the line holding the
        end of the text, and the word it may push down, move)."""
        self._kept_at = 0
        """Where, in the last source line, the first line after the kept ones starts."""
        self._width = 0
        """Cells the text wraps to (the widget's content width)."""
        self._height = 0
        """Screen lines the widget takes: the text's, and the room reserved below it."""
        self._reserving = False
        """Whether the tail keeps its room below the text (through layouts at a new width too)."""
        self._drawn_style: Style | None = None
        """The text's style as the widget's rendering draws it (its line filters applied), for
        :meth:`_append_in_place`; None until it is read from a rendered line."""
        self._blank_style: Style | None = None
        """A blank cell's style after the text as the rendering draws it, likewise."""
        self._typing: _Typing | None = None
        """How a token that lengthens the last line is drawn (:meth:`_append_in_place`)."""
        self._lane: TypingLane | None = None
        """The terminal's lane (tui.typing_lane), when its driver has one."""

    def on_mount(self) -> None:
        self._lane = getattr(self.app._driver, "lane", None)

    def reset(self, text: str = "", reserve: bool = False) -> None:
        """Show ``text`` instead of what is shown, with :data:`RESERVE_LINES` of room below it
        when ``reserve`` is true (none otherwise); asks for a layout."""
        self.close_lane()
        self._clear()
        self._height = 0
        self.extend(text)
        self._reserving = reserve
        self._fit_height()
        self.refresh(layout=True)

    def replace(self, text: str) -> bool:
        """Show ``text`` instead of what is shown, in the room the tail has: drawn at once when
        it fits, without a layout (the first tokens of a reply replacing its "…").

        Returns:
            As :meth:`extend`: True when the text fills or outgrows the room.
        """
        self.close_lane()
        shown = self.line_count
        self._clear()
        full = self.extend(text)
        if not full and self.line_count < shown:  # blank what the old text took below the new
            rows = Region(0, self.line_count, self.outer_size.width, shown - self.line_count)
            if not draw_now(self, rows.y, rows.height):
                self.refresh(rows)
        return full

    def _clear(self) -> None:
        self.text = ""
        self._sources = [""]
        self._wrapped = [[]]
        self._kept = self._kept_at = 0

    def extend(self, fragment: str) -> bool:
        """Append ``fragment``: wrap what can change (the end of the last source line and the new
        ones) and draw the screen lines from the first that changed (or that the cursor left).

        Returns:
            True when the text has reached the last line of its room (:attr:`full`): the caller
            calls :meth:`grow` (or :meth:`reset`). What fits was drawn; text beyond the room
            (a batch of several lines) is shown by that layout.
        """
        if not fragment:
            return False
        self.close_lane()
        if self._append_in_place(fragment):
            return False
        self.text += fragment
        index, kept = len(self._wrapped) - 1, self._kept
        row = first = self.line_count - len(self._wrapped[index]) + kept
        before = self._wrapped[index][kept:]  # the lines re-wrapping can change
        was_at = self._cursor_at()[0]
        shown = self._rows_shown(first)
        self._append_source(fragment)
        for old, new in zip(before, self._wrapped[index][kept:], strict=False):
            if old != new:
                break
            row += 1  # unchanged: the line above the one written to, mostly
        now_at = self._cursor_at()[0]
        if now_at != was_at:  # the line the cursor left, and the one it moved to
            row = min([row] + [at for at in (was_at, now_at) if at >= 0])
        end = min(max(self.line_count, was_at + 1, now_at + 1), self._height)
        if end > row and self._width and (self.line_count > self._height
                                          or not (self._draw_changed_cells(shown, first, row, end)
                                                  or draw_now(self, row, end - row))):
            self.refresh(Region(0, row, self.outer_size.width, end - row))  # drawn by the next frame
        return self.full

    def _append_source(self, fragment: str) -> None:
        """Add ``fragment`` (already in :attr:`text`) to the source lines, and wrap what it
        changes: the end of the last source line, and the new ones."""
        pieces = fragment.split("\n")
        self._sources[-1] += pieces[0]
        if len(pieces) > 1:
            self._wrap_last()  # the line is complete
            self._wrapped.extend(self._wrap(source) for source in pieces[1:-1])
            self._sources.extend(pieces[1:])
            self._wrapped.append([])
            self._kept = self._kept_at = 0
        self._wrap_last()

    def _rows_shown(self, first: int) -> list[str | None]:
        """The screen lines from ``first`` to the cursor's as drawn: each line's characters with
        the cursor, or None for a line that is not one run of printable ASCII (one cell a
        character) in one style."""
        rows: list[str | None] = []
        start = self.line_count
        for lines in reversed(self._wrapped):  # (the lines from first on are the last ones)
            if start <= first:
                break
            start -= len(lines)
            rows[:0] = [_plain(strip) for strip in lines[max(0, first - start):]]
        cursor_row, cell = self._cursor_at()
        if cursor_row == self.line_count:
            rows.append("")
        if first <= cursor_row < first + len(rows) and rows[cursor_row - first] is not None:
            rows[cursor_row - first] = rows[cursor_row - first][:cell] + CURSOR  # type: ignore[index]
        return rows

    def _draw_changed_cells(self, shown: list[str | None], first: int, row: int, end: int) -> bool:
        """Write only the cells that changed on screen lines ``row .. end - 1``, given what
        :meth:`_rows_shown` (from line ``first``) gave before the text changed: a word that
        wraps adds to the end of one line and the start of the next, and the cursor leaves one
        line for the next, so most of both lines stay as they are.

        Returns:
            True when written; False (nothing written) when a line before or after is not plain
            text (:meth:`_rows_shown`), the styles are not known yet, or direct_draw cannot write
            the cells: the caller then draws the lines whole.
        """
        if row < first:
            return False
        now = self._rows_shown(first)
        if self._drawn_style is None:
            written = next((y for y, line in enumerate(now) if line and line != CURSOR), None)
            self._drawn_style = None if written is None else style_on_screen(self, first + written, 0)
        text, blank = self._drawn_style, self._blank_cell_style()
        if text is None or blank is None:
            return False
        spans = []
        for y in range(row, end):
            old = shown[y - first] if y - first < len(shown) else ""
            new = now[y - first] if y - first < len(now) else ""
            if old is None or new is None:
                return False
            if old == new:
                continue
            same = len(os.path.commonprefix([old, new]))
            wiped = max(0, len(old) - len(new))
            segments = [Segment(new[same:], text)] if len(new) > same else []
            spans.append((y, same, Strip([*segments, Segment(" " * wiped, blank)] if wiped else segments,
                                         len(new) - same + wiped)))
        return draw_spans(self, spans) or not spans

    @property
    def _wrapped(self) -> list[list[Strip]]:
        """Each source line wrapped to ``self._width`` cells: :attr:`_lines`, with the text drawn
        in place since the last line was made joined to it."""
        self._join_typed()
        return self._lines

    @_wrapped.setter
    def _wrapped(self, lines: list[list[Strip]]) -> None:
        self._lines = lines  # (wrapped from the sources, which hold every token)
        self._typing = None

    def _join_typed(self) -> None:
        """Make the last line again with the text drawn in place since it was made, if any."""
        typing = self._typing
        if typing is None or not typing.typed:
            return
        *start, end = typing.line
        typing.line = self._lines[-1][-1] = Strip([*start, Segment(end.text + typing.typed, end.style)],
                                                 typing.cells)
        typing.typed = ""

    def _append_in_place(self, fragment: str) -> bool:
        """Draw ``fragment`` by writing only its cells and the cursor after the last character
        on screen, when that is what re-wrapping and redrawing the line would change: printable
        ASCII (one cell a character) that fits, with the cursor, on the last line, whose text
        ends the source (greedy wrapping then keeps every line and lengthens the last). Most
        tokens are; the rest (a newline, a word that wraps, other characters) are drawn whole.

        What a token needs is worked out once per line (:class:`_Typing`): at a Pi-class rate
        each token is an update of its own, and this is most of the UI thread's work for it.

        Returns:
            True when drawn and the text updated; False when nothing was done.
        """
        typing = self._typing_now()
        if typing is None:
            return False
        cells = typing.cells + len(fragment)
        if not (self.cursor and fragment.isascii() and fragment.isprintable()) \
                or cells + _CURSOR_CELLS > self._width:
            return False
        before, after = typing.ansi
        if not draw_text(self, typing.row, typing.cells, len(fragment) + _CURSOR_CELLS,
                         f"{before}{fragment}{CURSOR}{after}"):
            return False
        self.text += fragment
        self._sources[-1] += fragment
        typing.typed += fragment  # (the line is made again when read: each Strip is a dozen objects)
        typing.cells = cells
        return True

    def _typing_now(self) -> _Typing | None:
        """The record of the last line (:class:`_Typing`), made when there is none for it."""
        lines = self._lines[-1]
        typing = self._typing
        if typing is None or not lines or lines[-1] is not typing.line:
            typing = self._typing = self._start_typing()
        return typing

    def open_lane(self) -> None:
        """Let the generation thread draw the next tokens (tui.typing_lane) as
        :meth:`_append_in_place` would draw them, and, when the last line is plain text, those
        that wrap it or start new lines, onto the lines of the room below, as :meth:`extend`
        would (all but the room's last line: the text reaching that one needs a layout,
        :meth:`grow`), until
        :meth:`close_lane`. Nothing is opened when no token could be drawn in place now
        (:meth:`_start_typing`)."""
        typing = self._typing_now()
        if typing is None:
            return
        before, after = typing.ansi
        lines = self._height - 1 - typing.row
        line = _plain(typing.line) if lines > 1 else None
        blank = self._blank_ansi() if line is not None else None
        wrapping = None if line is None or blank is None else \
            Wrapping(partial(_split, self._width), line + typing.typed, 0, (self._width,) * lines, after, blank)
        open_lane(self, typing.row, typing.cells, self._width - typing.cells - _CURSOR_CELLS,
                  before, f"{CURSOR}{after}", _CURSOR_CELLS, wrapping)

    def reopen_lane(self) -> None:
        """:meth:`open_lane` when the text has not reached the room's last line and the widget
        is laid out at its height (not waiting for the layout :meth:`grow` asked for). (Its
        size as the last layout gave it: ``size`` would look the widget up in the screen's map,
        and rebuild that map when a refresh since has invalidated it, which the next layout then
        takes for a change it cannot let the terminal move: tui.widgets.terminal_scroll.)"""
        if not self.full and self.outer_size.height == self._height:
            self.open_lane()

    def close_lane(self) -> str:
        """Stop the generation thread drawing (tui.typing_lane), and take what it drew since the
        last call into the text (as :meth:`_append_in_place` does, or as :meth:`extend` wraps it
        when it went on to the next lines), telling :attr:`on_typed`.

        Returns:
            The text taken ("" when none).
        """
        lane = self._lane
        if lane is None:
            return ""
        lane.close()
        text, drawn = lane.take()
        if not text:
            return ""
        self.text += text
        typing = self._typing
        lines = self._lines[-1]
        if not drawn and typing is not None and lines and lines[-1] is typing.line:
            typing.typed += text
            typing.cells += len(text)
            self._sources[-1] += text  # (no newline: the lane draws those as new lines, below)
        else:  # wrapped, or new lines: as the lane drew them (or drawn by the next frame, when not)
            count = self.line_count
            self._append_source(text)
            if not drawn or self.line_count != count + len(drawn) - 1 or self._last_rows(len(drawn)) != drawn:
                self.refresh()
        if self.on_typed is not None:
            self.on_typed(text)
        return text

    def _last_rows(self, count: int) -> tuple[str, ...]:
        """The characters of the text's last ``count`` screen lines (fewer when it has fewer)."""
        rows: list[str] = []
        for lines in reversed(self._lines):
            rows[:0] = [strip.text for strip in lines[max(0, len(lines) - count + len(rows)):]]
            if len(rows) >= count:
                break
        return tuple(rows)

    def _blank_cell_style(self) -> Style | None:
        """A blank cell's style after the text as the rendering draws it (:attr:`_blank_style`,
        read from the room's last line the first time); None while that is not known (no blank
        line below the text)."""
        if self._blank_style is None and self._height > self.line_count + 1:
            self._blank_style = style_on_screen(self, self._height - 1, self._width - 1)
        return self._blank_style

    def _blank_ansi(self) -> tuple[str, str] | None:
        """The escape sequences before and after a blank cell (:meth:`_blank_cell_style`)."""
        style = self._blank_cell_style()
        if style is None:
            return None
        before, _, after = Strip([Segment("\0", style)]).render(self.app.console).partition("\0")
        return before, after

    def _start_typing(self) -> _Typing | None:
        """Where a token that lengthens the last line goes, and how it is drawn; None when no
        token can be drawn in place now: no cursor is drawn, or the last line is empty, below
        the room, not the end of its source line, or its style on screen is not known."""
        lines = self._lines[-1]
        if not (self.cursor and lines):
            return None
        last = lines[-1]
        row = self.line_count - 1
        if not last.text or row >= self._height or not self._sources[-1].endswith(last.text):
            return None
        if self._drawn_style is None:
            self._drawn_style = style_on_screen(self, row, 0)
            if self._drawn_style is None:
                return None
        # the text's escape sequences as a Strip renders them, around a marker (Strip.render)
        before, _, after = Strip([Segment("\0", self._drawn_style)]).render(self.app.console).partition("\0")
        return _Typing(last, row, last.cell_length, (before, after))

    def notify_style_update(self) -> None:
        self.close_lane()
        self._join_typed()
        self._drawn_style = self._blank_style = self._typing = None
        super().notify_style_update()

    @property
    def full(self) -> bool:
        """Whether the text takes every line the widget has, or more (or it was never laid out)."""
        return self.line_count >= self._height or not self._width

    def grow(self) -> None:
        """Make room for the text and :data:`RESERVE_LINES` more lines (asks for a layout; the
        lines drawn so far stay as they are, and the new ones are blank)."""
        self.close_lane()
        self._reserving = self._reserving or bool(self._height)
        self._fit_height()
        self.clear_cached_dimensions()  # (what refresh does only when it repaints)
        self.refresh(layout=True, repaint=False)

    @property
    def line_count(self) -> int:
        """Screen lines the text takes at the current width."""
        return sum(len(lines) for lines in self._wrapped)

    def _wrap(self, source: str) -> list[Strip]:
        if not self._width:
            return []
        if not source:
            return [Strip([])]
        style = self.visual_style
        return [Strip(line.render_segments(style)) for line in Content(source).wrap(self._width)]

    def _wrap_last(self) -> None:
        """Re-wrap the last source line after its kept lines, and keep all but the last two."""
        source = self._sources[-1]
        if "\t" in source:  # tab stops count from the start of the line: wrap it whole
            self._kept = self._kept_at = 0
        kept = self._wrapped[-1][:self._kept]
        if not self._width:
            self._wrapped[-1] = []
            return
        rest = source[self._kept_at:]
        lines = Content(rest).wrap(self._width) if rest or not kept else []
        style = self.visual_style
        self._wrapped[-1] = kept + [Strip(line.render_segments(style)) for line in lines]
        if len(lines) <= 2 or "\t" in source:
            return
        position = self._kept_at
        for line in lines[:-1]:  # find where the second-to-last line starts in the source
            found = source.find(line.plain, position) if line.plain else position
            if found < 0:
                return  # the wrapped text differs from the source: keep re-wrapping it whole
            start, position = found, found + len(line.plain)
        self._kept += len(lines) - 2
        self._kept_at = start

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width != self._width:
            self.close_lane()
            self._width = width
            self._wrapped = [self._wrap(source) for source in self._sources[:-1]] + [[]]
            self._kept = self._kept_at = 0
            self._wrap_last()
            # the room stays: dropping it when a scrollbar appears could make the conversation
            # short enough to lose the scrollbar again, and so on at every layout
            self._fit_height()
        return max(self._height, self.line_count)

    def _fit_height(self) -> None:
        """Take the text's lines, and :data:`RESERVE_LINES` more while the tail keeps room."""
        self._height = self.line_count + (RESERVE_LINES if self._reserving else 0)

    def _cursor_at(self) -> tuple[int, int]:
        """Where :data:`CURSOR` goes: (screen line, cell) just after the text; the start of the
        next line when the last one is full. (-1, 0) when no cursor is drawn."""
        if not self.cursor or not self._width:
            return -1, 0
        if not self._wrapped[-1]:  # no text (all of it moved to the Markdown widget)
            return self.line_count, 0
        cells = self._wrapped[-1][-1].cell_length
        if cells >= self._width:
            return self.line_count, 0
        return self.line_count - 1, cells

    def render_line(self, y: int) -> Strip:
        line = Strip.blank(0)
        rest = y
        for lines in self._wrapped:
            if rest < len(lines):
                line = lines[rest]
                break
            rest -= len(lines)
        row, cell = self._cursor_at()
        if y == row:  # (simplified: the cursor joins the text's run, no escape sequence of its own)
            line = Strip([*line.extend_cell_length(cell),
                          *Content(CURSOR).render_segments(self.visual_style)]).simplify()
        return line.extend_cell_length(self._width)

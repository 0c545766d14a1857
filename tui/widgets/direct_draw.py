"""Write a widget's changed lines to the terminal at once, without a Textual frame.

A Textual frame costs the same whatever changed: the widget posts an update, the screen waits for
idle, and the compositor renders, from their line caches, every widget whose clip meets the dirty
lines — for a line of a streaming reply that is the screen, the conversation, the reply and the
scrollbar as well as the line itself, about 1.4 ms a frame on this machine's cores (issue: smooth
and cheap; bench/smooth_stream.py). When nothing is drawn over the widget and its place on screen
is known, its new lines can go to the terminal directly: the widget renders them as any frame
would (``render_lines``: its padding, colours, and the app's line filters such as NO_COLOR's), and
they go to Textual's driver as ``App._display`` would send them (inside a synchronized update,
the cursor put back), in one write instead of its three.
A few cells appended to a line (a streamed token) can go alone (:func:`draw_cells`, or
:func:`draw_text` with them already rendered): the caller gives them styled as the line already
drawn there.

This reaches into Textual internals (the screen's compositor map, ``Widget._set_dirty``, the
widget's styles cache, ``LayoutUpdate``, the app's driver and its synchronized-update flag); they
are used here only, and tests/test_terminal.py checks
in a real terminal (tmux) that what this draws equals Textual's own full repaint (textual is
pinned below 9 in pyproject.toml).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from rich.style import Style
from textual._ansi_sequences import SYNC_END, SYNC_START
from textual._compositor import LayoutUpdate
from textual.app import App
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

from tui.typing_lane import Wrapping


def draw_now(widget: Widget, first: int, count: int) -> bool:
    """Write lines ``first .. first + count - 1`` of ``widget`` (rows of its outer region,
    counted from 0) to the terminal now.

    Returns:
        True when the lines were written (or are scrolled out of view; the part of them left of
        a widget drawn over their right end, such as a notification); False when they could
        not be, safely (the app is not drawing to a full-screen terminal, a batch update or
        another screen is in progress, the widget is not laid out on screen, or another widget
        is drawn over the start of those lines): the caller then refreshes the widget as usual.
    """
    placed = _placed(widget)
    if placed is None:
        return False
    app, screen, region, clip = placed
    # the widget's cached lines are stale, whole (a later frame draws what is hidden now)
    widget._set_dirty(Region(0, first, region.width, count).translate(-widget.content_offset))
    _forget_render(widget)
    rows = Region(region.x, region.y + first, region.width, count).intersection(clip)
    if not rows:
        return True  # scrolled out of view: nothing on screen changed
    rights = _uncovered(widget, screen, rows)
    if rights is None:
        return False
    lines = widget.render_lines(rows.translate(-region.offset))
    update = LayoutUpdate(
        [[line.crop(0, right - rows.x)] for line, right in zip(lines, rights, strict=True)], rows)
    _write(app, screen, update.render_segments(app.console))
    return True


def draw_cells(widget: Widget, y: int, x: int, cells: Strip) -> bool:
    """Write ``cells`` (one line of segments, styled as the widget's own rendering would style
    them: its line filters applied) at cell ``x`` of line ``y`` of ``widget``'s content region,
    over what is there, now (:func:`draw_text`).

    Returns:
        As :func:`draw_text`.
    """
    return draw_text(widget, y, x, cells.cell_length, cells.render(widget.app.console))


def draw_text(widget: Widget, y: int, x: int, cells: int, rendered: str) -> bool:
    """Write ``rendered`` (terminal text and SGR sequences, ``cells`` cells wide, styled as the
    widget's own rendering would style them: its line filters applied) at cell ``x`` of line
    ``y`` of ``widget``'s content region, over what is there, now.

    Where the widget's lines are on screen, and which part of each no other widget covers, is
    worked out once per layout of the screen (:func:`_place`): a token's cells are written
    10-20 times a second, on a new line every few batches.

    Returns:
        True when written; False (nothing written) when :func:`draw_now` could not draw the line,
        or any of those cells is out of view or under another widget: the caller then draws the
        line another way.
    """
    known = _place(widget)
    if known is None or not known.can_write(y, x, cells):
        return False
    widget._styles_cache.set_dirty(known.line(y))  # its cached line is stale (a later frame renders it anew)
    _write(widget.app, known.screen, f"{move_to(known.left + x, known.top + y)}{rendered}")
    return True


def open_lane(widget: Widget, y: int, x: int, room: int, before: str, after: str, after_cells: int,
              wrapping: Wrapping | None = None) -> bool:
    """Let the generation thread draw text at cell ``x`` of content line ``y`` of ``widget``
    (tui.typing_lane), as :func:`draw_text` would draw it there: ``before`` the text and
    ``after`` it (terminal text and SGR sequences, styled as the widget's own rendering would
    style them; ``after`` takes ``after_cells`` cells), at most ``room`` cells of text, fewer
    where the line leaves the view or another widget covers it. With ``wrapping`` (its
    ``left`` 0 and its ``rooms`` the cells of content lines ``y``, ``y + 1``, …, as the widget
    sees them), text that wraps may go on to the next of those lines, as far as they are in view
    and no other widget covers their start (each line's room cut where one covers its end).
    The lines' cached renderings are marked stale (a later frame renders them anew, from the
    widget, which has taken the text by then).

    Returns:
        True when the lane is open; False (it stays closed) when the app's driver has no lane,
        the widget's lines cannot be written straight to the terminal now (see
        :func:`draw_now`), or no cell of the line is free.
    """
    app = widget.app
    lane = getattr(app._driver, "lane", None)
    known = _place(widget) if lane is not None else None
    if lane is None or known is None or not known.can_write(y, x, 1):
        return False
    rights = []
    for line in range(y, y + (len(wrapping.rooms) if wrapping is not None else 1)):
        if not known.can_write(line, 0, 1):
            break
        right = known.rights[known.top + line - known.view.y]
        assert right is not None  # (can_write)
        rights.append(right - known.left)
        widget._styles_cache.set_dirty(known.line(line))
    room = min(room, rights[0] - x - after_cells)
    if wrapping is not None:
        wrapping = wrapping._replace(left=known.left, rooms=tuple(
            min(cells, right) for cells, right in zip(wrapping.rooms, rights, strict=False)))
    if room <= 0 and (wrapping is None or len(wrapping.rooms) < 2):
        return False
    cursor = known.screen.outer_size.clamp_offset(app.cursor_position)
    start, end = (SYNC_START, SYNC_END) if app._sync_available else ("", "")
    lane.open(start, known.left + x, known.top + y, room, before, after, f"{move_to(cursor.x, cursor.y)}{end}",
              after_cells, wrapping)
    return True


def draw_spans(widget: Widget, spans: list[tuple[int, int, Strip]]) -> bool:
    """Write each ``(y, x, cells)`` of ``spans`` as :func:`draw_cells` writes one: ``cells`` at
    cell ``x`` of content line ``y`` of ``widget``, all in one write to the terminal (a word that
    wraps changes the end of one line and the start of the next).

    Returns:
        True when all were written; False (nothing written) when :func:`draw_now` could not draw
        those lines, or any span is out of view or under another widget.
    """
    known = _place(widget) if spans else None
    if known is None or not all(known.can_write(y, x, cells.cell_length) for y, x, cells in spans):
        return False
    console = widget.app.console
    sequence = []
    for y, x, cells in spans:
        widget._styles_cache.set_dirty(known.line(y))  # (a later frame renders it anew)
        sequence.append(f"{move_to(known.left + x, known.top + y)}{cells.render(console)}")
    _write(widget.app, known.screen, "".join(sequence))
    return True


def move_to(x: int, y: int) -> str:
    """The terminal sequence that moves the cursor to screen cell (x, y), counted from 0 (CUP,
    ECMA-48 8.3.21, counts from 1: rich's ``Control.move_to``)."""
    return f"\x1b[{y + 1};{x + 1}H"


def _write(app: App, screen: Screen, sequence: str) -> None:
    """Write ``sequence`` (cursor moves and rendered segments) to the terminal, then put the
    cursor back, in a synchronized update when the terminal has them, as ``App._display`` does,
    in one write to the driver, flushed (hearth's driver writes from this thread:
    tui.input_driver; Textual's own hands the write to its writer thread, which flushes), holding
    the typing lane's lock throughout when the driver has one (tui.typing_lane), so that no
    batch of the generation thread's is flushed between the two."""
    cursor = screen.outer_size.clamp_offset(app.cursor_position)
    sequence += move_to(cursor.x, cursor.y)
    if app._sync_available:
        sequence = f"{SYNC_START}{sequence}{SYNC_END}"
    assert app._driver is not None
    lane = getattr(app._driver, "lane", None)
    with lane.lock if lane is not None else contextlib.nullcontext():
        app._driver.write(sequence)
        app._driver.flush()


def _forget_render(widget: Widget) -> None:
    """Have the widget's next rendering call its ``render()`` again: Textual keeps what
    ``render()`` gave until the widget is refreshed (``Widget._render``, in its layout cache), so a
    line rendered again after the widget's text changed without a refresh (as the status bar's
    does, drawn at once) showed the text of the last frame: seen in tests/test_terminal.py, a
    status bar drawn whole just after a frame had painted it, and then its changed cells written
    over a line that was not the one they were worked out from."""
    widget._layout_cache.pop("_render.visual", None)


def style_on_screen(widget: Widget, y: int, x: int) -> Style | None:
    """The style of cell ``x`` of content line ``y`` of ``widget`` as its rendering draws it now
    (padding, colours and the app's line filters, such as NO_COLOR's): what cells given to
    :func:`draw_cells` for that place must carry: ``Style.null()`` for a cell drawn unstyled (a
    blank after the text of a widget without a background), which renders as plain text too.
    None when the line has no such cell."""
    offset, width = widget.content_offset, widget.outer_size.width
    widget._set_dirty(Region(-offset.x, y, width, 1))  # rendered from the widget as it is now
    _forget_render(widget)
    (line,) = widget.render_lines(Region(0, offset.y + y, width, 1))
    for segment in line.crop(offset.x + x, offset.x + x + 1):
        return segment.style or Style.null()
    return None


class _Placed(NamedTuple):
    """Where :func:`draw_cells` writes a widget's content lines, as worked out after a layout."""

    visible: dict
    """The screen's map of visible widgets then (a new dict after each layout)."""
    screen: Screen
    left: int
    """The screen column of the content region's first cell."""
    top: int
    """The screen row of the content region's first line."""
    offset_y: int
    """The content region's first line in the widget's own lines (below its top padding)."""
    width: int
    """The widget's width, cells."""
    view: Region
    """The part of the widget in view (screen cells)."""
    rights: list[int | None]
    """Per row of ``view``: where a widget drawn over its right end starts (``view.right``
    where none is); None where another widget is drawn over its start."""

    def can_write(self, y: int, x: int, cells: int) -> bool:
        """Whether ``cells`` cells at cell ``x`` of content line ``y`` are in view and under no
        other widget."""
        row = self.top + y - self.view.y
        if not 0 <= row < self.view.height:
            return False
        right = self.rights[row]
        return right is not None and self.view.x <= self.left + x <= self.left + x + cells <= right

    def line(self, y: int) -> Region:
        """Content line ``y`` in the widget's own lines, as its line cache counts them."""
        return Region(0, self.offset_y + y, self.width, 1)


_PLACED = "_direct_draw_placed"
"""The attribute of a widget holding its :class:`_Placed` (on the widget, not in a weak mapping:
the map of visible widgets it holds refers to the widget, which would then never leave such a
mapping)."""


def _place(widget: Widget) -> _Placed | None:
    """The widget's :class:`_Placed`, worked out again after a layout of its screen; None when
    its lines cannot be written straight to the terminal now (see :func:`draw_now`)."""
    app = widget.app
    if app._driver is None or not app._running or app._closed or app._batch_count:
        return None
    known: _Placed | None = getattr(widget, _PLACED, None)
    if known is not None and app.screen is known.screen \
            and known.screen._compositor.visible_widgets is known.visible:
        return known
    placed = _placed(widget)
    if placed is None:
        return None
    app, screen, region, clip = placed
    offset = widget.content_offset
    view = region.intersection(clip)
    known = _Placed(screen._compositor.visible_widgets, screen, region.x + offset.x,
                    region.y + offset.y, offset.y, region.width, view, _row_rights(widget, screen, view))
    setattr(widget, _PLACED, known)
    return known


def _placed(widget: Widget) -> tuple[App, Screen, Region, Region] | None:
    """The app, the screen, and the widget's region and clip on it (screen cells), when its lines
    can be written straight to the terminal now; None when not (see :func:`draw_now`)."""
    app = widget.app
    screen = widget.screen
    if app.is_headless or app.is_inline or app._batch_count or app._driver is None \
            or not app._running or app._closed or app.screen is not screen:
        return None
    try:
        region, clip = screen._compositor.visible_widgets[widget]
    except KeyError:
        return None
    return app, screen, region, clip


def _uncovered(widget: Widget, screen: Screen, rows: Region) -> list[int] | None:
    """Per row of ``rows`` (screen cells), where a widget drawn over its right end starts (a
    notification at the right; the rows' right edge where nothing is); None when another widget
    is drawn over the start of a row (a menu, a tooltip)."""
    rights = _row_rights(widget, screen, rows)
    return None if None in rights else rights  # type: ignore[return-value]


def _row_rights(widget: Widget, screen: Screen, rows: Region) -> list[int | None]:
    """As :func:`_uncovered`, row by row: None for each row with another widget over its start."""
    ancestors = set(widget.ancestors)
    rights: list[int | None] = [rows.right] * rows.height
    for other, (other_region, other_clip) in screen._compositor.visible_widgets.items():
        if other is widget:
            break  # the rest are drawn beneath it (visible_widgets is in front-to-back order)
        over = other_region.intersection(other_clip)
        if other in ancestors or not over.overlaps(rows):
            continue
        for y in range(max(over.y, rows.y), min(over.bottom, rows.bottom)):
            right = rights[y - rows.y]
            if right is not None:
                rights[y - rows.y] = None if over.x <= rows.x else min(right, over.x)
    return rights

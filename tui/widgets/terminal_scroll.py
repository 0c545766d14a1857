"""Let the terminal move the lines of a scrolled conversation, and paint only what that leaves.

When a streaming reply grows in a conversation that follows its end, each layout moves every line
of the conversation up, and Textual repaints every one of them: 4.3 ms of a layout's 8 ms on
this machine's cores, 11 layouts in a reply of 600 tokens, with a frame of 2-3 KB each time
(timed in the real app at full speed). A terminal can move lines itself: with its scrolling
margins set to the conversation's rows (DECSTBM), an index at the bottom margin (IND) moves them
up a line and a reverse index at the top (RI) down (ECMA-48 8.3.61 and 8.3.104; DEC VT100, so
xterm, tmux, screen, the Linux console and every terminal that emulates them). The frame after
it then paints only what the move does not show: the lines it brings in, the widgets whose
content changed or that did not move with the rest (a notification over the conversation), and
the scrollbar (written straight to the terminal: it spans every line).

The margins move whole lines: what is beside the conversation on them moves too, and is painted
again unless it is the background of the screen behind it. This is done only when what is on the
terminal is known: the screen's map of widgets as last painted, one layout since, no batch
update, the screen current, and every region Textual was asked to repaint on those lines
explained by a widget's move or change. Anything else (a resize, a theme, another screen, a full
repaint) is left to Textual's frame as it would be.

This reaches into Textual internals (``Screen._refresh_layout`` and ``_compositor_refresh``, the
compositor's maps and dirty regions); tests/test_terminal.py checks in a real terminal (tmux) that
the screen after a streamed reply and after scrolling equals Textual's own full repaint (textual
is pinned below 9 in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, ClassVar

from textual._ansi_sequences import SYNC_END, SYNC_START
from textual._compositor import Compositor, CompositorMap
from textual.geometry import NULL_SPACING, Region
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget

from tui.widgets.direct_draw import move_to
from tui.widgets.layout_size import lines_kept_when_taller


class TerminalScrollScreen(Screen[Any]):
    """A screen whose :meth:`terminal_scrolled` container is scrolled by the terminal when a
    layout or a scroll moves its content up or down (see the module's docstring)."""

    SCROLLED_BY_TERMINAL: ClassVar[type[Widget] | None] = None
    """The class of the container (a child of the screen; the first such) whose lines the
    terminal moves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compositor = RowCompositor()
        self._painted: CompositorMap | None = None
        """The compositor's map of the widgets on the terminal now; None when not known."""
        self._layouts_since_paint = 0
        self._map_before_layout: CompositorMap | None = None
        self._repaints_asked: dict[Widget, set[Region]] = {}
        """The regions (in each widget's own cells) the widgets to repaint asked for, as the
        last layout began."""
        self._bar_drawn: tuple[Any, ...] | None = None
        """What each line of the container's vertical scrollbar shows on the terminal
        (:func:`_bar_cells`); None when not known."""

    def terminal_scrolled(self) -> Widget | None:
        """The scrolling container whose lines the terminal moves (None: none)."""
        kind = self.SCROLLED_BY_TERMINAL
        return None if kind is None else next((child for child in self.children if isinstance(child, kind)), None)

    def before_frame(self) -> None:
        """Called as each layout or paint of this screen begins, before anything is rendered
        (a subclass makes its widgets ready to draw: the chat screen takes the text the
        generation thread drew, tui.typing_lane)."""

    def after_frame(self) -> None:
        """Called after each paint of this screen (a subclass may let the generation thread
        draw again: the chat screen opens the reply's typing lane)."""

    def _refresh_layout(self, size: Any = None, scroll: bool = False) -> None:
        self.before_frame()
        self._layouts_since_paint += 1
        self._map_before_layout = _shown_map(self._compositor)
        # (the layout hands them to the compositor, placed where the widgets were)
        self._repaints_asked = {widget: set(widget._repaint_regions) for widget in self._dirty_widgets}
        super()._refresh_layout(size, scroll)

    def _compositor_refresh(self) -> None:
        self.before_frame()
        app = self.app
        sequence = self._scroll_terminal()
        if sequence:  # the frame that follows paints the rest, in the same synchronized update
            assert app._driver is not None
            app._driver.write(f"{SYNC_START}{sequence}" if app._sync_available else sequence)
        try:
            super()._compositor_refresh()
        except BaseException:
            if sequence and app._sync_available and app._driver is not None:
                app._driver.write(SYNC_END)
            raise
        finally:
            self._layouts_since_paint = 0
            self._repaints_asked = {}
        self._painted = _shown_map(self._compositor) if self._can_write() else None
        container = self.terminal_scrolled()
        bar = container._vertical_scrollbar if container is not None else None
        self._bar_drawn = _bar_cells(bar) if self._painted is not None and bar is not None \
            and bar.display and not bar._repaint_required and not bar._repaint_regions else None
        self.after_frame()

    def _can_write(self) -> bool:
        app = self.app
        return not (app.is_headless or app.is_inline or app._batch_count or app._driver is None
                    or not app._running or app._closed or app.screen is not self)

    def _scroll_terminal(self) -> str:
        """When the container's content has only moved up or down by whole lines since the last
        frame (and what changed besides is known), the terminal sequence that moves its lines,
        and the compositor's dirty regions cut down to what that move does not show; "" (and
        nothing changed) otherwise."""
        painted = self._painted
        container = self.terminal_scrolled()
        if painted is None or container is None or self._layouts_since_paint != 1 \
                or self._map_before_layout is not painted or not self._can_write():
            return ""
        compositor = self._compositor
        now = _shown_map(compositor)
        dirty = compositor._dirty_regions
        screen_region = compositor.size.region
        was, new = painted.get(container), now.get(container)
        if screen_region in dirty or was is None or new is None or was.region != new.region \
                or was.clip != new.clip or container.show_horizontal_scrollbar:
            return ""
        view = new.region.intersection(new.clip)
        # the terminal moves whole lines: the conversation's, and what is beside it on them
        lines = Region(screen_region.x, view.y, screen_region.width, view.height)
        shift = _moved_by(container, painted, now)
        if not shift or abs(shift) >= lines.height:
            return ""
        ancestors = [container, *(node for node in container.ancestors if isinstance(node, Widget))]
        changed = self._dirty_widgets
        if any(painted.get(widget) != now.get(widget) for widget in ancestors[1:]) \
                or any(widget in changed or widget.styles.gutter != NULL_SPACING for widget in ancestors):
            return ""  # (the container and the screen behind it draw only their background there)
        bar = container._vertical_scrollbar if container.show_vertical_scrollbar else None
        # what Textual would repaint, as the regions each widget covered and covers
        accounted = {region.intersection(clip) for region, _, clip, *_ in (*painted.values(), *now.values())}
        if not all(region in accounted or not region.overlaps(lines)
                   or any(widget in painted and _shown(painted[widget]).contains_region(region)
                          for widget in changed)
                   for region in dirty):
            return ""  # asked for some other reason: leave the frame to Textual

        band = Region(lines.x, lines.bottom - shift, lines.width, shift) if shift > 0 \
            else Region(lines.x, lines.y, lines.width, -shift)
        paint = [band]  # (the lines the move brings in are blank)
        skip = {*ancestors, bar}
        for widget, geometry in now.items():
            if widget in skip:
                continue
            shown = _shown(geometry)
            old = painted.get(widget)
            moved = _moved(old, lines, shift)
            if not moved and not shown.overlaps(lines):
                continue  # (away from the lines moved: painted as Textual asked)
            region = geometry.region
            asked = self._repaints_asked.get(widget) if widget in changed else set()
            if widget._repaint_regions:  # asked for since the layout began: painted now, not in a frame after
                asked = None if asked is None else {*asked, *widget._exchange_repaint_regions()}
            if old is not None and asked is not None and old.region.x == region.x \
                    and old.region.width == region.width and old.region.y - shift == region.y \
                    and (old.region.height == region.height or lines_kept_when_taller(widget)):
                paint += [*_rows_outside(shown, moved), *_rows_outside(moved, shown)]
                paint += [part.translate(region.offset).intersection(geometry.clip) for part in asked]
            else:  # (a widget that is new, did not move with the conversation, or changed unknown)
                paint += [shown, moved]
        for widget in painted.keys() - now.keys():
            paint.append(_moved(painted[widget], lines, shift))

        dirty.difference_update([region for region in dirty if region.overlaps(lines)])
        dirty.update(region for region in paint if region)
        top, bottom = lines.y + 1, lines.bottom  # (DECSTBM counts lines from 1)
        if shift > 0:
            sequence = f"\x1b[{top};{bottom}r{move_to(0, lines.bottom - 1)}" + "\x1bD" * shift
        else:
            sequence = f"\x1b[{top};{bottom}r{move_to(0, lines.y)}" + "\x1bM" * -shift
        return sequence + "\x1b[r" + self._bar_lines(bar, now, band, shift)

    def _bar_lines(self, bar: ScrollBar | None, now: CompositorMap, band: Region, shift: int) -> str:
        """The vertical scrollbar's lines outside ``band`` (the frame paints the band) that differ
        from what the move left there, rendered. (Rendering a scrollbar's lines through Textual's
        styles costs about 0.27 ms and 0.04 ms a line here: its whole column, 1.2 ms.)"""
        if bar is None or bar not in now:
            return ""
        geometry = now[bar]
        shown = _shown(geometry)
        bar._exchange_repaint_regions()
        bar._repaint_required = False
        before, after = self._bar_drawn, _bar_cells(bar)
        top = geometry.region.y
        stale = [y for rows in _rows_outside(shown, band) for y in range(rows.y, rows.bottom)
                 if before is None or after is None or len(before) != len(after)
                 or not 0 <= y - top + shift < len(before) or before[y - top + shift] != after[y - top]]
        console = self.app.console
        drawn = []
        for first, count in _runs(stale):
            lines = bar.render_lines(Region(0, first - top, geometry.region.width, count))
            drawn += [f"{move_to(shown.x, y)}{line.render(console)}" for y, line in enumerate(lines, first)]
        return "".join(drawn)


def _bar_cells(bar: ScrollBar) -> tuple[Any, ...] | None:
    """What each line of a vertical scrollbar shows (comparable, not rendered: the thumb's
    characters and styles from Textual's ``ScrollBarRender.render_bar``); None when its renderable
    is not a ``ScrollBarRender``."""
    renderable = bar.render()
    if not isinstance(renderable, ScrollBarRender) or not bar.size.height:
        return None
    return _bar_segments(bar.size.height, renderable.virtual_size, renderable.window_size,
                         renderable.position, renderable.thickness, renderable.style)


@lru_cache(maxsize=16)
def _bar_segments(height: int, virtual_size: float, window_size: float, position: float,
                  thickness: int, style: Any) -> tuple[Any, ...]:
    """(Cached: a scrollbar is compared after every frame, and mostly has not changed.)"""
    cells = ScrollBarRender.render_bar(size=height, virtual_size=virtual_size, window_size=window_size,
                                       position=position, thickness=thickness, vertical=True)
    return tuple((segment.text, segment.style, style) for segment in cells.segments)


class RowCompositor(Compositor):
    """Textual's compositor, rendering for a frame that repaints some lines only the widgets on
    those lines, and only their lines there.

    Textual's renders every widget whose clip meets the lines repainted, whole: for a widget in
    the conversation that is every widget on screen in it, so a frame that repaints four lines at
    its bottom rendered all 19 (3 ms of a layout's frame here, of a full frame's 6.7). Each line of
    the frame is composed from the renders that cover it alone (``Compositor._render_chops``), and
    a widget's lines do not depend on which of them are asked for, so restricting the renders to
    the lines of the frame's crop gives the same frame. (Only to whole lines: the cells a widget
    covers start at cuts of the line, which a narrower crop would not.)

    Nor does it render a widget's line that the widgets in front of it cover from end to end:
    the chops take each cell from the frontmost render that reaches it, so that line of it would
    be dropped unseen. In a streaming reply's frame the reply, the conversation and the screen
    lie behind the reply's text on every line (its blocks span the line), and were half the
    widgets' lines rendered (0.5 ms of a layout's frame at full speed here)."""

    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
        if not crop or crop == self.size.region:
            yield from super()._get_renders(crop)
            return
        lines = Region(0, crop.y, self.size.width, crop.height)
        in_front: dict[int, list[tuple[int, int]]] = {}  # each line's cells covered so far: (start, end)
        for widget, (region, clip) in self.visible_widgets.items():  # (front to back)
            shown = region.intersection(clip).intersection(lines)
            if not shown:
                continue
            x, right = shown.x, shown.right
            seen = []
            for y in range(shown.y, shown.bottom):
                spans = in_front.setdefault(y, [])
                if not any(start <= x and right <= end for start, end in spans):
                    seen.append(y)
                _cover(spans, x, right)
            for first, count in _runs(seen):
                part = Region(x, first, shown.width, count)
                yield region, part, widget.render_lines(part.translate(-region.offset))


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Ascending ``rows`` as runs of consecutive ones, (first, count) each: rendered a run at
    once (a call to a widget's ``render_lines`` costs as much as a few of its lines)."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][0] + runs[-1][1] == row:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((row, 1))
    return runs


def _cover(spans: list[tuple[int, int]], start: int, end: int) -> None:
    """Add the cells [start, end) to ``spans``, kept as disjoint spans with no two touching (so
    cells covered by several spans together are inside one of them)."""
    for span in [span for span in spans if span[0] <= end and start <= span[1]]:
        spans.remove(span)
        start, end = min(start, span[0]), max(end, span[1])
    spans.append((start, end))


def _shown_map(compositor: Compositor) -> CompositorMap:
    """The map the compositor paints from now (``Compositor.visible_widgets``)."""
    return compositor._visible_map if compositor._visible_map is not None else compositor._full_map


def _shown(geometry: Any) -> Region:
    """The part of a widget on screen, from its map geometry."""
    return geometry.region.intersection(geometry.clip)


def _moved(geometry: Any, lines: Region, shift: int) -> Region:
    """Where what a widget showed on ``lines`` is after the terminal moves them ``shift`` up."""
    if geometry is None:
        return Region()
    return _shown(geometry).intersection(lines).translate((0, -shift)).intersection(lines)


def _moved_by(container: Widget, painted: CompositorMap, now: CompositorMap) -> int:
    """Lines the container's content moved up on screen between the two maps (0 when none of its
    children is in both): a child's place on screen is its place in the content less the scroll."""
    for child in container.children:
        if child in painted and child in now:
            was, new = painted[child], now[child]
            return (was.region.y - was.virtual_region.y) - (new.region.y - new.virtual_region.y)
    return 0


def _rows_outside(region: Region, other: Region) -> list[Region]:
    """The parts of ``region`` not in ``other``, as whole rows when they span the same cells."""
    if not region:
        return []
    if not other or not region.overlaps(other) or (region.x, region.width) != (other.x, other.width):
        return [region]
    parts = []
    if region.y < other.y:
        parts.append(Region(region.x, region.y, region.width, other.y - region.y))
    if region.bottom > other.bottom:
        parts.append(Region(region.x, other.bottom, region.width, region.bottom - other.bottom))
    return parts

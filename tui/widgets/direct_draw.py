"""Write a widget's changed lines to the terminal at once, without a Textual frame.

A Textual frame costs the same whatever changed: the widget posts an update, the screen waits for
idle, and the compositor renders, from their line caches, every widget whose clip meets the dirty
lines — for a line of a streaming reply that is the screen, the conversation, the reply and the
scrollbar as well as the line itself, about 1.4 ms a frame on this machine's cores (issue: smooth
and cheap; bench/smooth_stream.py). When nothing is drawn over the widget and its place on screen
is known, its new lines can go to the terminal directly: the widget renders them as any frame
would (``render_lines``: its padding, colours, and the app's line filters such as NO_COLOR's), and
Textual's own display call writes them inside a synchronized update and puts the cursor back.

This reaches into Textual internals (the screen's compositor map, ``Widget._set_dirty``,
``App._display`` and ``LayoutUpdate``); they are used here only, and tests/test_terminal.py checks
in a real terminal (tmux) that what this draws equals Textual's own full repaint (textual is
pinned below 9 in pyproject.toml).
"""

from __future__ import annotations

from textual._compositor import LayoutUpdate
from textual.geometry import Region
from textual.widget import Widget


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
    app = widget.app
    screen = widget.screen
    if app.is_headless or app.is_inline or app._batch_count or app._driver is None \
            or app.screen is not screen:
        return False
    compositor = screen._compositor
    try:
        region, clip = compositor.visible_widgets[widget]
    except KeyError:
        return False
    # the widget's cached lines are stale, whole (a later frame draws what is hidden now)
    widget._set_dirty(Region(0, first, region.width, count).translate(-widget.content_offset))
    rows = Region(region.x, region.y + first, region.width, count).intersection(clip)
    if not rows:
        return True  # scrolled out of view: nothing on screen changed
    ancestors = set(widget.ancestors)
    rights = [rows.right] * rows.height  # per row: where a widget drawn over its right end starts
    for other, (other_region, other_clip) in compositor.visible_widgets.items():
        if other is widget:
            break  # the rest are drawn beneath it (visible_widgets is in front-to-back order)
        over = other_region.intersection(other_clip)
        if other in ancestors or not over.overlaps(rows):
            continue
        if over.x <= rows.x:
            return False  # a menu or tooltip is over the start of these lines
        for y in range(max(over.y, rows.y), min(over.bottom, rows.bottom)):
            # a notification at the right: write that row left of it (the rows above it whole)
            rights[y - rows.y] = min(rights[y - rows.y], over.x)
    lines = widget.render_lines(rows.translate(-region.offset))
    app._display(screen, LayoutUpdate(
        [[line.crop(0, right - rows.x)] for line, right in zip(lines, rights, strict=True)], rows))
    return True

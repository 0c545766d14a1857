"""Layouts that leave alone what they do not change: a ``virtual_size`` for widgets whose look
does not depend on it, and line caches kept when only a widget's height changes.

Textual's layout gives every widget its virtual size through a reactive that, by default, asks
for another layout and a repaint of the widget when the size changes (``Widget.virtual_size``).
For the conversation's widgets both are redundant: the layout that set the size has already
placed every widget and marked every region whose geometry changed for repainting
(``Compositor.reflow``), a widget whose size changed is marked dirty by ``Widget._size_updated``
itself, and a scrolling container's scrollbars are updated there too. Textual's default made
each layout while a reply streams ask for a second one; with ``layout=False`` alone (the second
session), the repaint stayed: a second repaint of the whole conversation ~35 ms after each layout
(a trace of Textual's refresh calls while a reply streams at turn 51).
"""

from __future__ import annotations

from typing import TypeVar

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widget import Widget


def set_by_layout() -> Reactive[Size]:
    """A ``virtual_size`` reactive that triggers neither a layout nor a repaint (class attribute).

    For widgets that draw nothing that depends on it: plain widgets, and containers whose content
    is child widgets (the layout repaints the children it moves). Not for a widget that draws
    scrolled content itself (a code fence scrolled sideways, a log)."""
    return Reactive(Size(0, 0), layout=False, repaint=False)


WidgetClass = TypeVar("WidgetClass", bound=type[Widget])


def keeps_lines_when_taller(cls: WidgetClass) -> WidgetClass:
    """Class decorator: a widget whose rendered lines do not depend on its height keeps their
    cache through a layout that only makes it taller or shorter.

    ``Widget._size_updated`` marks the whole widget dirty whenever its size changes, and the
    repaint after the layout renders every visible line of it again through Textual's styles
    (padding, background, line filters). While a reply streams, each layout that grows the tail
    or moves a block into the Markdown widget makes the reply, its Markdown and the tail taller:
    in a new chat, 35 of the ~60 lines re-rendered per layout were theirs, unchanged (counted
    with a trace of ``StylesCache.render_widget``). Their lines at a given row are the same at
    any height when nothing is drawn along the top or bottom edge (no border, outline or
    vertical padding there, no border title); a width change still re-renders everything, and
    whatever changes a line marks it dirty as usual. (A decorator, not a mixin base: Textual
    takes a widget's CSS type name from its first base class.)"""
    size_updated = cls._size_updated

    def _size_updated(self: Widget, size: Size, virtual_size: Size, container_size: Size,
                      layout: bool = True) -> bool:
        if size.width == self._size.width and size.height and self._size.height \
                and lines_kept_when_taller(self):
            if size.height > self._size.height:
                # its content is rendered anew at the new height for the new lines (not the
                # cached lines): Textual draws a line past the content it last rendered as a
                # blank in the widget's text colour too, where the content's blank has none
                self._dirty_regions.add(size.region)
            self._size = size  # (so Widget._size_updated does not mark every line dirty)
        return size_updated(self, size, virtual_size, container_size, layout)

    cls._size_updated = _size_updated  # type: ignore[method-assign]
    cls._keeps_lines_when_taller = True  # type: ignore[attr-defined]
    return cls


def lines_kept_when_taller(widget: Widget) -> bool:
    """Whether ``widget`` keeps its rendered lines through a layout that changes only its height
    (:func:`keeps_lines_when_taller`): its class is decorated, and nothing is drawn along its top
    or bottom edge now."""
    styles = widget.styles
    return getattr(widget, "_keeps_lines_when_taller", False) \
        and styles.padding.top == styles.padding.bottom == 0 \
        and styles.border_top[0] in ("", "none") and styles.border_bottom[0] in ("", "none") \
        and styles.outline_top[0] in ("", "none") and styles.outline_bottom[0] in ("", "none") \
        and widget._border_title is None and widget._border_subtitle is None

"""A ``virtual_size`` for widgets whose look does not depend on it.

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

from textual.geometry import Size
from textual.reactive import Reactive


def set_by_layout() -> Reactive[Size]:
    """A ``virtual_size`` reactive that triggers neither a layout nor a repaint (class attribute).

    For widgets that draw nothing that depends on it: plain widgets, and containers whose content
    is child widgets (the layout repaints the children it moves). Not for a widget that draws
    scrolled content itself (a code fence scrolled sideways, a log)."""
    return Reactive(Size(0, 0), layout=False, repaint=False)

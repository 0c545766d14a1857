"""A ``virtual_size`` for widgets that do not scroll their own content.

Textual's layout gives every widget its virtual size through a reactive that, by default, asks
for another layout and a repaint of the widget when the size changes (``Widget.virtual_size``).
For the conversation's widgets both are redundant: the layout that set the size has already
placed every widget and marked every region whose geometry changed for repainting
(``Compositor.reflow``), and a widget whose size changed is marked dirty by
``Widget._size_updated`` itself. Left as it is, each layout while a reply streams was followed by
a second layout (the conversation, the reply and the tail each growing) or a second repaint of the
whole conversation ~35 ms later (measured by a trace of Textual's refresh calls while a reply
streams at turn 51).
"""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive


def set_by_layout() -> Reactive[Size]:
    """A ``virtual_size`` reactive that triggers neither a layout nor a repaint (class attribute).

    For widgets whose look does not depend on their virtual size: not for a widget that scrolls
    its own content (a code fence scrolled sideways, a log)."""
    return Reactive(Size(0, 0), layout=False, repaint=False)

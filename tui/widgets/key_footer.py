"""The footer of key bindings, rebuilt only when the bindings it shows change.

Textual's Footer recomposes all its keys on every ``bindings_updated`` signal, and the signal
fires often while a reply streams (focus and reactive updates); rebuilding ~8 widgets each time
cost more CPU than rendering the reply. This footer compares what it would show first.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (binding.key, binding.description, enabled, binding.show)
            for (_, binding, enabled, _) in screen.active_bindings.values()
        ) + (screen.app.app_focus,)
        if shown != self._shown:
            self._shown = shown
            super().bindings_changed(screen)

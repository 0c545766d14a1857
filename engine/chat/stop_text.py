"""Ending a streamed reply at a stop text (a marker the model writes out as ordinary text).

Text is held back only while it could be the start of a stop text, so the reader sees every other
character as soon as it is generated and never sees a part of a marker.
"""

from __future__ import annotations


class StopText:
    """Feed generated text in pieces; get back what may be shown, and whether a stop text came.

    Args:
        stops: the stop texts (non-empty strings).
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of everything fed so far that can be shown now (nothing once stopped)."""
        if not self.stops:  # most models: nothing to watch for, nothing held (the token loop)
            return text
        if self.stopped:
            return ""
        held = self._held + text
        cut = min((i for i in (held.find(stop) for stop in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return held[:cut]
        keep = max((n for stop in self.stops for n in range(1, len(stop)) if held.endswith(stop[:n])),
                   default=0)
        self._held = held[len(held) - keep:] if keep else ""
        return held[:len(held) - keep]

    def flush(self) -> str:
        """What was held back when the reply ends without a stop text."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

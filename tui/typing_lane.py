"""Tokens that only lengthen the last line of a streaming reply, written to the terminal by the
thread that generates them, without waking the UI.

At a Pi-class rate (10-20 tokens/s) every token is an update of the screen of its own, and most
only lengthen the line being written: their cells go after the last character, in the text's
style, with the cursor after them (tui.widgets.stream_tail). Drawing one on the UI thread cost
that thread 0.5 ms of CPU a token here, under a CPU quota of 0.3 of a core (bench/smooth_stream.py,
session 20): its event loop woken from the generation thread, the batch callback, Textual's
lookups, and the context switches to and from llama.cpp's thread on the one core, 2.5-3 % of what
generation had. Written by the generation thread itself, such a token costs one write to the
terminal (0.08 ms of that thread's CPU under the quota). Measured in the real app (session 21,
one TUI before and one after, replies in turn): under the quota, 90 % of the batches went this
way, the UI thread's CPU per update fell from 0.50 to 0.27 ms, and generation while drawing ran
at 0.978 of its speed while not (median of 6 replies; 0.975 before); at full speed, where a batch
holds 6-8 tokens and one in two or three wraps, a third to a half went this way, and that figure
was 0.988 (median of 8; 0.978 before): work moved from the UI thread, which takes a core from one
of llama.cpp's threads, to the thread that waits for them anyway.

The lane is a place on screen and how to draw there, given by the UI thread (:meth:`open`): the
cell after the text, the style's escape sequences, the cells left before the line ends or another
widget covers it, and the cursor's place to put back. The generation thread writes a batch of
printable ASCII there when it fits (:meth:`write`); anything else (a newline, a word that wraps,
other characters, a full line) it hands to the UI as before. The UI takes the text written so far
(:meth:`take`) whenever it handles a batch and before each frame, so the reply's widgets always
hold what the screen shows before they draw; and it closes the lane (:meth:`close`) before
anything that may move the line: each frame, its own drawing of the reply, the end of the reply,
leaving the terminal. One lock serialises every write to the terminal (the driver's and the
lane's), so a batch never lands inside another write's escape sequences.

Text reaching the lane is already inert (engine.sanitize); :meth:`write` takes printable ASCII
only, so nothing it writes can be read by the terminal as a control sequence.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

LOG = logging.getLogger("hearth.typing_lane")
LOG_LINE = re.compile(r"typing lane: (\d+) of (\d+) batches drawn by the generation thread, ([\d.]+) ms of its CPU")
"""The line :meth:`TypingLane.report` logs: batches the lane drew, the reply's batches, CPU
milliseconds."""


class _Spot:
    """Where and how the next batch is drawn (see :meth:`TypingLane.open`)."""

    __slots__ = ("start", "x", "y", "room", "before", "after", "drawn")

    def __init__(self, start: str, x: int, y: int, room: int, before: str, after: str, drawn: int) -> None:
        self.start, self.x, self.y, self.room, self.before, self.after = start, x, y, room, before, after
        self.drawn = drawn
        """The batches handed to the UI that it had drawn when it opened the lane."""


class TypingLane:
    """The lane of one terminal (held by its driver: tui.input_driver).

    Args:
        send: writes a string to the terminal at once (encoded as the driver encodes, flushed),
            called with :attr:`lock` held; returns False when the terminal has gone.

    Attributes:
        lock: held for every write to the terminal, the driver's and the lane's (re-entrant: a
            direct draw holds it across the driver's write and flush, which take it too).
        batches: batches written by :meth:`write` since the last :meth:`report` (int).
        cpu_s: CPU time of the threads that called :meth:`write` while writing them, seconds
            (``time.thread_time``): what the lane costs generation, for bench/smooth_stream.py.
    """

    def __init__(self, send: Callable[[str], bool]) -> None:
        self.lock = threading.RLock()
        self._send = send
        self._spot: _Spot | None = None
        self._typed: list[str] = []
        """Text written since the UI last took it (:meth:`take`)."""
        self.batches = 0
        self.cpu_s = 0.0
        self._handed = 0
        """(Written by the generation thread only) batches handed to the UI (:meth:`hand_over`)."""
        self._drawn = 0
        """(Written by the UI thread only) the last of those it has drawn (:meth:`drawn`)."""

    @property
    def is_open(self) -> bool:
        return self._spot is not None

    def open(self, start: str, x: int, y: int, room: int, before: str, after: str) -> None:
        """(UI thread) Let the generation thread draw batches from screen cell (``x``, ``y``),
        counted from 0, as long as the line has ``room`` cells for them: each written as
        ``start``, a cursor move there, ``before``, the batch, ``after`` (``start`` opens a
        synchronized update when the terminal has them; ``after`` draws the cursor, ends the
        style, puts the terminal's cursor back and ends the update)."""
        spot = _Spot(start, x, y, room, before, after, self._drawn)
        with self.lock:
            self._spot = spot if room > 0 else None

    def close(self) -> None:
        """(UI thread) Draw nothing more until :meth:`open`. When this returns, no write of the
        lane is under way (the text written stays for :meth:`take`)."""
        with self.lock:
            self._spot = None

    def hand_over(self) -> int:
        """(Generation thread) A batch goes to the UI instead (the lane refused it): until the UI
        has drawn it (:meth:`drawn`) and opened the lane again, the lane takes nothing, so no
        later batch is drawn before it. Returns the batch's number, for :meth:`drawn`."""
        self._handed += 1
        return self._handed

    def drawn(self, number: int) -> None:
        """(UI thread) The batch :meth:`hand_over` numbered ``number`` has been drawn."""
        self._drawn = number

    def take(self) -> str:
        """(UI thread) The text written since the last call, in order ("" when none)."""
        with self.lock:
            text = "".join(self._typed)
            self._typed.clear()
        return text

    def write(self, text: str) -> bool:
        """(Generation thread) Draw ``text`` at the lane's place, when the lane is open and
        ``text`` is printable ASCII (one cell a character) that fits in its room, and every batch
        handed to the UI had been drawn when the lane was opened.

        Returns:
            True when written (the UI will :meth:`take` it); False when not (nothing was
            written: the caller hands it to the UI).
        """
        if self._spot is None or not (text.isascii() and text.isprintable()):
            return False  # (read without the lock: a quick no; the lock decides a yes)
        began = time.thread_time()
        with self.lock:
            spot = self._spot
            if spot is None or len(text) > spot.room or spot.drawn != self._handed:
                return False
            if not self._send(f"{spot.start}\x1b[{spot.y + 1};{spot.x + 1}H{spot.before}{text}{spot.after}"):
                self._spot = None  # the terminal has gone: the UI's path drops it likewise
                return False
            spot.x += len(text)
            spot.room -= len(text)
            self._typed.append(text)
        self.batches += 1
        self.cpu_s += time.thread_time() - began
        return True

    def report(self, batches: int) -> None:
        """(Generation thread, as a reply ends) Log :attr:`batches` of the reply's ``batches``
        and :attr:`cpu_s` (one line, read by bench/smooth_stream.py: :data:`LOG_LINE`), then
        zero both."""
        LOG.info("typing lane: %d of %d batches drawn by the generation thread, %.3f ms of its CPU",
                 self.batches, batches, 1000 * self.cpu_s)
        self.batches, self.cpu_s = 0, 0.0

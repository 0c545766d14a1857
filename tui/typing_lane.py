"""Tokens that lengthen the last line of a streaming reply, wrap it, or start new lines below it,
written to the terminal by the thread that generates them, without waking the UI.

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
of llama.cpp's threads, to the thread that waits for them anyway. Session 22 let the lane wrap
the line and start new ones too (below): at full speed 66-77 % of the batches went this way
(23-36 % going on to the next lines), and the UI's CPU per update fell from 1.61 to 1.21-1.46
ms (the frames that lay the chat out as the reply's room fills are most of what is left).
Session 23 opened the lane again after each frame (tui.widgets.terminal_scroll's
``after_frame``), where before only the UI's drawing of the next batch did: 83-91 % at full speed.

The lane is a place on screen and how to draw there, given by the UI thread (:meth:`open`): the
cell after the text, the style's escape sequences, the cells left before the line ends or another
widget covers it, and the cursor's place to put back; and, when the line is plain text, how the
widget wraps it (:class:`Wrapping`) and the blank lines below it that the text may go on to. The
generation thread writes a batch of printable ASCII there when it fits (:meth:`write`), or, when
it wraps the line or holds newlines, the cells that change on the line and the next lines' text.
Anything else (a batch that reaches the room's last line, which needs a layout, other
characters) it hands to the UI as before. The UI takes the text written so far
(:meth:`take`) whenever it handles a batch and before each frame, so the reply's widgets always
hold what the screen shows before they draw; and it closes the lane (:meth:`close`) before
anything that may move the line: each frame, its own drawing of the reply, the end of the reply,
leaving the terminal; it opens it again after its drawing of a batch and after each frame, while
the reply has room left on screen. One lock serialises every write to the terminal (the driver's and the
lane's), so a batch never lands inside another write's escape sequences.

Text reaching the lane is already inert (engine.sanitize); :meth:`write` takes printable ASCII
only, so nothing it writes can be read by the terminal as a control sequence.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

LOG = logging.getLogger("hearth.typing_lane")
LOG_LINE = re.compile(r"typing lane: (\d+) of (\d+) batches drawn by the generation thread, ([\d.]+) ms of its CPU; "
                      r"(\d+) of them went on to the next lines")
"""The line :meth:`TypingLane.report` logs: batches the lane drew, the reply's batches, CPU
milliseconds, batches that went on to the next lines (:attr:`TypingLane.wraps`)."""


class Wrapping(NamedTuple):
    """How the lane may draw a batch that wraps the line or holds newlines (given to
    :meth:`TypingLane.open`)."""

    split: Callable[[str], list[str]]
    """Wraps a line of source (no newline) as the widget does, into the text of each screen line
    (called on the generation thread: it must not touch the UI's state)."""
    line: str
    """The text on the line now (printable ASCII, one cell a character), from the widget's first
    column: what :attr:`split` wraps with the batch."""
    left: int
    """The screen column of the line's first cell (counted from 0)."""
    rooms: tuple[int, ...]
    """Per screen line from the one being written: the cells the text and what ``after`` draws may
    take on it (its width, less any part another widget covers). The lines after the first are
    blank, and the lane may move the text to them."""
    end: str
    """Ends the text's style (``after`` of :meth:`TypingLane.open` without the cursor it draws
    first): written after text on a line the cursor leaves."""
    blank: tuple[str, str]
    """The escape sequences before and after a blank cell of the widget (the cells a word leaves
    when it moves down)."""


class Taken(NamedTuple):
    """What :meth:`TypingLane.take` gives the UI."""

    text: str
    """The text written since the last take, in order ("" when none)."""
    lines: tuple[str, ...]
    """When a batch went on to the next lines (it wrapped, or held newlines): the text of each
    screen line from the one the lane was opened at to the one it writes now, as drawn (without
    the cursor); () when none did."""


class _Spot:
    """Where and how the next batch is drawn (see :meth:`TypingLane.open`)."""

    __slots__ = ("start", "x", "y", "room", "before", "after", "finish", "after_cells", "drawn", "wrapping",
                 "lines")

    def __init__(self, start: str, x: int, y: int, room: int, before: str, after: str, finish: str,
                 after_cells: int, drawn: int, wrapping: Wrapping | None) -> None:
        self.start, self.x, self.y, self.room = start, x, y, room
        self.before, self.after, self.finish, self.after_cells = before, after, finish, after_cells
        self.drawn = drawn
        """The batches handed to the UI that it had drawn when it opened the lane."""
        self.wrapping = wrapping
        self.lines: list[str] = [wrapping.line] if wrapping is not None else []
        """The text of each screen line from the first, as drawn (the last: the one written)."""


class TypingLane:
    """The lane of one terminal (held by its driver: tui.input_driver).

    Args:
        send: writes a string to the terminal at once (encoded as the driver encodes, flushed),
            called with :attr:`lock` held; returns False when the terminal has gone.

    Attributes:
        lock: held for every write to the terminal, the driver's and the lane's (re-entrant: a
            direct draw holds it across the driver's write and flush, which take it too).
        batches: batches written by :meth:`write` since the last :meth:`report` (int).
        wraps: those of them that went on to the next lines, wrapping or with newlines (int).
        cpu_s: CPU time of the threads that called :meth:`write` while writing them, seconds
            (``time.thread_time``): what the lane costs generation, for bench/smooth_stream.py.
    """

    def __init__(self, send: Callable[[str], bool]) -> None:
        self.lock = threading.RLock()
        self._send = send
        self._spot: _Spot | None = None
        self._typed: list[str] = []
        """Text written since the UI last took it (:meth:`take`)."""
        self._lines: tuple[str, ...] = ()
        """The lines as drawn, when a batch went on to the next lines since the UI last took the
        text."""
        self.batches = self.wraps = 0
        self.cpu_s = 0.0
        self._handed = 0
        """(Written by the generation thread only) batches handed to the UI (:meth:`hand_over`)."""
        self._drawn = 0
        """(Written by the UI thread only) the last of those it has drawn (:meth:`drawn`)."""

    @property
    def is_open(self) -> bool:
        return self._spot is not None

    def open(self, start: str, x: int, y: int, room: int, before: str, after: str, finish: str,
             after_cells: int = 1, wrapping: Wrapping | None = None) -> None:
        """(UI thread) Let the generation thread draw batches from screen cell (``x``, ``y``),
        counted from 0, as long as the line has ``room`` cells for them: each written as
        ``start``, a cursor move there, ``before``, the batch, ``after`` (``after_cells`` cells:
        the text's cursor, then the end of its style), ``finish`` (``start`` opens a synchronized
        update when the terminal has them; ``finish`` puts the terminal's cursor back and ends
        the update). With ``wrapping``, a batch that does not fit may also move the end of the
        line to the next, as the widget's wrapping would."""
        spot = _Spot(start, x, y, room, before, after, finish, after_cells, self._drawn, wrapping)
        with self.lock:
            self._spot = spot if room > 0 or (wrapping is not None and len(wrapping.rooms) > 1) else None

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

    def take(self) -> Taken:
        """(UI thread) The text written since the last call, and the lines as drawn when a batch
        wrapped (:class:`Taken`)."""
        with self.lock:
            taken = Taken("".join(self._typed), self._lines)
            self._typed.clear()
            self._lines = ()
        return taken

    def write(self, text: str) -> bool:
        """(Generation thread) Draw ``text`` at the lane's place, when the lane is open and
        ``text`` is printable ASCII (one cell a character) that fits in its room, or, with
        wrapping, printable ASCII and newlines that go on to the lines below (:meth:`_wrapped`),
        and every batch handed to the UI had been drawn when the lane was opened.

        Returns:
            True when written (the UI will :meth:`take` it); False when not (nothing was
            written: the caller hands it to the UI).
        """
        if self._spot is None or not (text.isascii() and (text.isprintable()
                                                           or text.replace("\n", "").isprintable())):
            return False  # (read without the lock: a quick no; the lock decides a yes)
        began = time.thread_time()
        with self.lock:
            spot = self._spot
            if spot is None or spot.drawn != self._handed:
                return False
            drawn: str | None
            if len(text) <= spot.room and "\n" not in text:
                drawn = f"\x1b[{spot.y + 1};{spot.x + 1}H{spot.before}{text}{spot.after}"
                spot.x += len(text)
                spot.room -= len(text)
                if spot.lines:
                    spot.lines[-1] += text
            elif (drawn := self._wrapped(spot, text)) is None:
                return False
            if not self._send(f"{spot.start}{drawn}{spot.finish}"):
                self._spot = None  # the terminal has gone: the UI's path drops it likewise
                return False
            self._typed.append(text)
            if len(spot.lines) > 1:
                self._lines = tuple(spot.lines)
        self.batches += 1
        self.cpu_s += time.thread_time() - began
        return True

    def _wrapped(self, spot: _Spot, text: str) -> str | None:
        """What draws ``text`` when it goes on to the next lines (it wraps the line being
        written, or holds newlines), as the widget's wrapping would put it (each line of source
        wrapped by :attr:`Wrapping.split`): the cells that change on this line (the batch's
        start, and blanks where a word that moves down and the cursor were), then each next
        line's text, and ``after`` on the last; and the spot moved to that line. None (the spot
        as it was) when the lane cannot: it has no wrapping, the text needs more lines than it
        has, or a line does not fit its room."""
        wrapping = spot.wrapping
        if wrapping is None:
            return None
        row = len(spot.lines) - 1  # (of wrapping.rooms)
        old = spot.lines[-1]
        lines = [line for source in (old + text).split("\n") for line in wrapping.split(source)]
        rooms = wrapping.rooms[row:row + len(lines)]
        if len(lines) < 2 or len(rooms) < len(lines) or len(old) + spot.after_cells > rooms[0] \
                or len(lines[-1]) + spot.after_cells > rooms[-1] \
                or any(len(line) > room for line, room in zip(lines, rooms, strict=True)):
            return None
        first = lines[0]
        same = len(os.path.commonprefix([old, first]))
        wiped = len(old) + spot.after_cells - len(first)
        left = wrapping.left
        drawn = [f"\x1b[{spot.y + 1};{left + same + 1}H"]
        if len(first) > same:
            drawn.append(f"{spot.before}{first[same:]}{wrapping.end}")
        if wiped > 0:
            drawn.append(f"{wrapping.blank[0]}{' ' * wiped}{wrapping.blank[1]}")
        for down, line in enumerate(lines[1:], 1):  # (blank lines of the room: only the text)
            if line or down == len(lines) - 1:
                ending = spot.after if down == len(lines) - 1 else wrapping.end
                drawn.append(f"\x1b[{spot.y + down + 1};{left + 1}H{spot.before}{line}{ending}")
        spot.lines[-1:] = lines
        spot.y += len(lines) - 1
        spot.x = left + len(lines[-1])
        spot.room = rooms[-1] - len(lines[-1]) - spot.after_cells
        self.wraps += 1
        return "".join(drawn)

    def report(self, batches: int) -> None:
        """(Generation thread, as a reply ends) Log :attr:`batches` of the reply's ``batches``,
        :attr:`cpu_s` and :attr:`wraps` (one line, read by bench/smooth_stream.py:
        :data:`LOG_LINE`), then zero them."""
        LOG.info("typing lane: %d of %d batches drawn by the generation thread, %.3f ms of its CPU; "
                 "%d of them went on to the next lines", self.batches, batches, 1000 * self.cpu_s, self.wraps)
        self.batches = self.wraps = 0
        self.cpu_s = 0.0

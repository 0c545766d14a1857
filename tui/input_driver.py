"""Textual's Linux driver with an input thread that sleeps until there is input.

Textual's ``LinuxDriver.run_input_thread`` waits for keys with ``select`` and a 0.1 s timeout, so
its thread wakes ten times a second whether or not anything was typed: to see whether the app is
exiting, and to let the key parser time out a lone Escape. Measured in hearth while a reply
streamed at a Pi-class rate (per-thread CPU from /proc/PID/task/TID/schedstat): that thread took
1.3-1.6 ms of CPU a second, as much as a tenth of everything the UI did, and on a Pi under
load it comes out of llama.cpp's time; idle, it is most of what hearth costs.

This driver's thread waits with no timeout while the parser holds nothing (``select`` returns
when a key arrives), with the parser's own timeout while it holds the start of an escape
sequence, and is woken through a pipe when its exit event is set (exit or suspend).

Its output goes to the terminal from the thread that draws (Textual's event loop), not through
Textual's writer thread: handing each write to that thread cost a wake-up and a context switch per
write, and a streaming reply writes 10-20 times a second, each a few hundred bytes of one token's
cells (tui.widgets.direct_draw). Measured here at a Pi-class rate, the writer thread took
0.09-0.12 ms of CPU per token, a tenth of the UI's, on the one core generation also runs on
(bench/ui_cost.py's process column, bench/smooth_stream.py). The writer thread's queue let the
UI run at most 30 writes ahead of a terminal that reads slowly; now a write waits for the kernel's
terminal buffer instead, which over SSH sshd empties into its channel window (megabytes) as fast
as it reads, so a streaming reply (2-9 KB/s) does not wait on it.

Everything else is Textual's: the same parser, the same events, the same start and stop.
"""

from __future__ import annotations

import os
import selectors
import threading
from codecs import getincrementaldecoder
from typing import Any

from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

from tui.typing_lane import TypingLane

PARSER_TICK_S = 0.1
"""The wait while the parser holds part of a sequence: Textual's own (``run_input_thread``)."""


class _WakingEvent(threading.Event):
    """The driver's exit event: setting it also wakes the input thread, through a pipe (after
    the event is set, so the woken thread sees it)."""

    def __init__(self, wake: int) -> None:
        super().__init__()
        self.wake: int | None = wake
        """The pipe's write end; None once the driver has closed it (its number may be reused)."""

    def set(self) -> None:
        super().set()
        if self.wake is not None:
            try:
                os.write(self.wake, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already


class QuietLinuxDriver(LinuxDriver):
    """``LinuxDriver`` whose input thread does not wake while nothing is typed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self.exit_event: _WakingEvent = _WakingEvent(self._wake_write)
        self._output_lost = False
        """The terminal refused a write (it has gone): later output is dropped."""
        self.lane = TypingLane(self._send)
        """Where the generation thread draws the reply's plain text itself (tui.typing_lane);
        its lock serialises every write to the terminal."""
        self._suspended_on_signal = False
        """SIGTSTP took the terminal back (Textual's handler), and SIGCONT is to give it again."""

    def write(self, data: str) -> None:
        """Write ``data`` to the terminal's buffered stream now, from the calling thread (sent
        by :meth:`flush`, or sooner when the stream's buffer fills). A terminal that has gone
        (a dropped SSH connection: EIO) takes nothing more, and the app carries on to save and
        quit."""
        if self._output_lost or self._file is None:
            return
        with self.lane.lock:
            try:
                self._file.write(data)
            except OSError:
                self._output_lost = True

    def flush(self) -> None:
        """Send what :meth:`write` buffered to the terminal (one ``write`` system call for a
        frame that fits the stream's buffer)."""
        if self._output_lost or self._file is None:
            return
        with self.lane.lock:
            try:
                self._file.flush()
            except OSError:
                self._output_lost = True

    def _send(self, data: str) -> bool:
        """Write and flush ``data`` (the lane's; called with its lock held). False when the
        terminal has gone."""
        if self._output_lost or self._file is None:
            return False
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            self._output_lost = True
            return False
        return True

    def _sigtstp_application(self, *args: Any) -> None:
        # (Textual's handler gives the terminal back before stopping only when it may restart)
        self._suspended_on_signal = self._auto_restart
        super()._sigtstp_application(*args)

    def _sigcont_application(self, *args: Any) -> None:
        """Resume after a suspend (SIGTSTP, then ``fg``), and only then. Textual's handler
        starts application mode again on every SIGCONT; one that follows a SIGSTOP (``kill
        -STOP``, a debugger, or cpulimit, which throttles a process by stopping and continuing
        it many times a second) then started another input thread and writer thread beside the
        running ones, two input threads reading the same keys (a running hearth had 11 threads
        after three such signals, 5 before)."""
        if self._suspended_on_signal:
            self._suspended_on_signal = False
            super()._sigcont_application(*args)

    def stop_application_mode(self) -> None:
        """Close the lane first (no token is drawn after the terminal is given back), then
        Textual's (leaving, or suspending)."""
        self.lane.close()
        super().stop_application_mode()

    def suspend_application_mode(self) -> None:
        """Give the terminal back until :meth:`resume_application_mode` (SIGTSTP, or
        ``App.suspend``). Textual's also calls :meth:`close`, which closes the input thread's wake
        pipe for good: the thread that resuming starts then failed on it at once (a traceback on
        ``fg`` after ``kill -TSTP``)."""
        self.stop_application_mode()
        super().close()  # (Textual's close: its writer thread, which resuming starts anew)

    def close(self) -> None:
        super().close()
        self.exit_event.wake = None
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def run_input_thread(self) -> None:
        """Wait for input and dispatch events (Textual's loop, without the idle wake-ups)."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def process(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> bool:
            """Read what is ready; False when the terminal's input has ended."""
            for key, _mask in ready:
                if key.fd == self._wake_read:
                    os.read(self._wake_read, 64)
                    continue
                try:
                    data = os.read(self.fileno, 1024 * 4)
                except OSError:  # (EIO: the terminal hung up)
                    data = b""
                if not data:
                    return False
                for event in parser.feed(decode(data, final=final)):
                    self.process_message(event)
            for event in parser.tick():
                self.process_message(event)
            return True

        try:
            while not self.exit_event.is_set():
                due = parser._timeout_time  # set while the parser holds part of a sequence
                wait = None if due is None else min(PARSER_TICK_S, max(0.0, due - get_time()))
                if not process(selector.select(wait)):
                    self._input_ended()
                    return
            selector.unregister(self.fileno)
            process(selector.select(PARSER_TICK_S), final=True)
        finally:
            selector.close()

    def _input_ended(self) -> None:
        """(Input thread) The terminal's input ended: it went away with no hang-up signal (its
        far end closed while it is not hearth's controlling terminal), or stdin was a file or
        pipe that ran out. Every read from then on returns at once, and reading on spun a core
        until someone killed hearth. Exit as on a hang-up (tui.app's SIGHUP handler), so the
        chat is saved as on a normal exit."""
        try:
            self._loop.call_soon_threadsafe(self._app.exit)
        except RuntimeError:  # (the app's loop has closed: it is exiting already)
            pass

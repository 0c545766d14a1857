"""What drawing a streaming reply takes from generation, measured inside one hearth process (for
bench/smooth_stream.py; off unless ``HEARTH_BENCH_ALTERNATE_S`` is set).

Comparing hearth's tokens/s with a raw llama-cpp-python loop's needs two processes one after the
other, and this VM's speed moves 10-20 % within a minute: pairs of 600-token replies spread over
0.80-1.29 of each other at full speed (bench.smooth_stream, 2026-12-06), far wider than the few per
cent the UI costs. Here the same process alternates instead: for ``HEARTH_BENCH_ALTERNATE_S``
seconds the reply is drawn as usual, for the next as many its text is not handed to the UI at all
(it appears when the reply ends, with the whole Markdown), and so on. Every interval between two
tokens is counted in the phase it began in. With phases of half a second, a 600-token reply has a
dozen of each, so a drift of the machine's speed falls on both alike, and the mean token interval
while drawing against while not is the UI's cost to generation (the drawing phases are what a user
gets; the others are what generation does with no UI work at all). A long interval counts like any
other: a frame that held generation up is part of the cost, and a stall of the machine falls in
either kind of phase.
"""

from __future__ import annotations

import logging
import os
import re
import statistics

LOG = logging.getLogger("hearth.draw_tax")

ENV = "HEARTH_BENCH_ALTERNATE_S"
LOG_LINE = re.compile(r"draw tax: (\d+) token intervals while drawing, mean ([\d.]+) ms; "
                      r"(\d+) while not, mean ([\d.]+) ms")
"""The line :meth:`DrawTax.report` logs, as bench/smooth_stream.py reads it: intervals while
drawing, their mean (ms), intervals while not, their mean (ms)."""


class DrawTax:
    """Alternating phases of ``period_s`` seconds (monotonic clock), drawing first."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._intervals: tuple[list[float], list[float]] = ([], [])
        """Token intervals (seconds) begun while not drawing [0] and while drawing [1]."""
        self._last = 0.0

    @classmethod
    def from_env(cls) -> DrawTax | None:
        """A DrawTax when ``HEARTH_BENCH_ALTERNATE_S`` is a positive number of seconds, else None."""
        try:
            period = float(os.environ.get(ENV, "0"))
        except ValueError:
            return None
        return cls(period) if period > 0 else None

    def drawing(self, now: float) -> bool:
        """Whether ``now`` (time.monotonic(), seconds) falls in a drawing phase."""
        return int(now / self.period_s) % 2 == 0

    def token(self, now: float) -> None:
        """A token arrived at ``now`` (time.monotonic(), seconds)."""
        if self._last:
            self._intervals[self.drawing(self._last)].append(now - self._last)
        self._last = now

    def report(self) -> None:
        """Log the reply's figures (one line, read by bench/smooth_stream.py) and start anew."""
        quiet, drawn = self._intervals
        if quiet and drawn:
            LOG.info("draw tax: %d token intervals while drawing, mean %.4f ms; %d while not, "
                     "mean %.4f ms", len(drawn), 1000 * statistics.fmean(drawn), len(quiet),
                     1000 * statistics.fmean(quiet))
        self._intervals = ([], [])
        self._last = 0.0

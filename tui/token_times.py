"""Each token's arrival in the TUI, written down for bench/smooth_stream.py (off unless
``HEARTH_BENCH_TOKEN_TIMES`` names a file).

The issue's figure "reply tokens/s in the TUI ÷ raw llama-cpp-python tokens/s" needs two processes,
and this VM's speed moves 10-20 % within seconds: whole replies taken in turn spread over 0.79-1.25
of each other at full speed (session 23's run), far wider than the 2 % the target allows. The
benchmark therefore runs hearth's reply and the raw loop's at the same time, one process stopped
(SIGSTOP) while the other runs, taking turns every half second, so a drift of the machine falls on
both alike; each side's rate is its tokens over the time it ran between its first and last token.
That needs the time of every token, which hearth does not log: with this hook on, the generation
thread notes each token's ``time.monotonic()`` (the clock the benchmark's stops are timed by, the
same in every process) as it reaches the UI's side, and appends the reply's list to the file as
one JSON line when the reply ends.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

LOG = logging.getLogger("hearth.token_times")

ENV = "HEARTH_BENCH_TOKEN_TIMES"


class TokenTimes:
    """The arrival times of one reply's tokens (``time.monotonic()``, seconds), appended as a
    JSON list, one line per reply, to ``path`` (:meth:`report`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._times: list[float] = []

    @classmethod
    def from_env(cls) -> TokenTimes | None:
        """A TokenTimes writing to the file ``HEARTH_BENCH_TOKEN_TIMES`` names, else None."""
        path = os.environ.get(ENV, "")
        return cls(Path(path)) if path else None

    def token(self, now: float) -> None:
        """A token arrived at ``now`` (``time.monotonic()``, seconds)."""
        self._times.append(now)

    def report(self) -> None:
        """Append the reply's times as one JSON line (a reader takes only lines that end), and
        start anew. A file that cannot be written is logged, not raised."""
        line = json.dumps(self._times) + "\n"
        self._times = []
        try:
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line)
        except OSError as error:
            LOG.warning("token times not written: %s", error)

"""How often a streaming reply is redrawn: as often as ``ui.max_fps`` allows, and less when the
UI's own CPU use would take more than ``ui.cpu_budget`` of a core from llama.cpp, but never less
than 10 times a second (text that arrives in jerks reads worse than a slightly slower reply).

On a 2-core machine llama.cpp's threads use every core while generating, so each millisecond of
UI work is a millisecond of generation lost. The pacer measures the UI thread's CPU time per frame
(``time.thread_time`` on the thread that calls :meth:`frame_done`) and stretches the interval
towards ``cpu_per_frame / cpu_budget``, within [1 / max_fps, MAX_INTERVAL_S]. What a frame costs
is kept small by drawing the growing tail cheaply (tui.widgets.stream_tail); bench/smooth_stream.py
measures both.
"""

from __future__ import annotations

import time

MAX_INTERVAL_S = 0.08
"""Never wait longer than this between redraws of a streaming reply, seconds: a batch is posted
with the first token after the interval, so this gives at least 10 updates a second at 15
tokens/s and no gap a reader notices (about 200 ms) between them."""

SMOOTHING = 0.3
"""Weight of the newest frame in the moving average of CPU per frame."""


class FramePacer:
    """Shared by the UI thread (which reports frames) and the worker (which reads ``interval``).

    Args:
        max_fps: the cap, frames per second.
        cpu_budget: the UI's share of one core while streaming, 0..1.
    """

    def __init__(self, max_fps: int, cpu_budget: float) -> None:
        self.min_interval = 1.0 / max_fps
        self.cpu_budget = cpu_budget
        self.interval = self.min_interval
        """Seconds the worker waits between posting batches (a float: atomic to read)."""
        self._cpu_per_frame = 0.0
        self._last_cpu: float | None = None

    def due(self, waited: float, token_gap: float) -> bool:
        """Whether to hand the text held back to the UI now: ``waited`` seconds since the last
        batch, tokens arriving ``token_gap`` seconds apart (a moving average). Due when the
        interval has passed, or when waiting for the next token would pass
        :data:`MAX_INTERVAL_S`: at 17 tokens/s (59 ms apart) an 80 ms interval checked only as
        tokens arrive would otherwise give a batch every other token, 118 ms apart — under 10
        updates a second at exactly the token rates of a Pi."""
        return waited >= self.interval or waited + token_gap > MAX_INTERVAL_S

    def start(self) -> None:
        """A reply starts streaming (call on the UI thread)."""
        self._last_cpu = time.thread_time()

    def frame_done(self, batches: int = 1) -> None:
        """``batches`` batches were drawn since the last call: this one, handed to the UI, and
        those the generation thread drew itself meanwhile (tui.typing_lane) (call on the UI
        thread, once per batch handed to it). The UI's CPU time since the last call is spread
        over them."""
        now = time.thread_time()
        if self._last_cpu is not None:
            spent = (now - self._last_cpu) / max(1, batches)
            self._cpu_per_frame += SMOOTHING * (spent - self._cpu_per_frame)
            wanted = self._cpu_per_frame / self.cpu_budget if self.cpu_budget > 0 else 0.0
            self.interval = max(self.min_interval, min(MAX_INTERVAL_S, wanted))  # max_fps first
        self._last_cpu = now

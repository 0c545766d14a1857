"""The frame pacer stretches the redraw interval to keep the UI's CPU share under budget."""

import time

import pytest

from tui.frame_pacer import MAX_INTERVAL_S, FramePacer


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cheap_frames_keep_the_max_fps_interval() -> None:
    pacer = FramePacer(max_fps=10, cpu_budget=0.5)
    pacer.start()
    for _ in range(5):
        pacer.frame_done()
    assert pacer.interval == pytest.approx(0.1)


def test_costly_frames_stretch_the_interval_within_bounds() -> None:
    pacer = FramePacer(max_fps=30, cpu_budget=0.1)
    pacer.start()
    for _ in range(10):
        burn(0.005)  # 5 ms of CPU per frame
        pacer.frame_done()
    # 5 ms per frame at 10 % of a core: one frame every ~0.05 s (between 1/30 s and the cap)
    assert 1 / 30 < pacer.interval < MAX_INTERVAL_S
    for _ in range(10):
        burn(0.1)
        pacer.frame_done()
    assert pacer.interval == MAX_INTERVAL_S  # never fewer than 1 / MAX_INTERVAL_S updates a second


def test_zero_budget_means_max_fps_only() -> None:
    pacer = FramePacer(max_fps=20, cpu_budget=0.0)
    pacer.start()
    burn(0.05)
    pacer.frame_done()
    assert pacer.interval == pytest.approx(0.05)


def test_a_batch_is_due_when_the_next_token_would_come_too_late() -> None:
    pacer = FramePacer(max_fps=15, cpu_budget=0.02)
    pacer.interval = MAX_INTERVAL_S
    assert pacer.due(MAX_INTERVAL_S, 0.001)  # the interval has passed
    assert not pacer.due(0.030, 0.010)  # 100 tokens/s: the next token comes well within it
    assert pacer.due(0.059, 0.059)  # 17 tokens/s: waiting would make a 118 ms gap: every token
    assert not pacer.due(0.040, 0.040)  # 25 tokens/s: the next one lands on the interval

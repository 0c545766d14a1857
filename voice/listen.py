"""One push-to-talk recording: capture until the key is pressed again, the speaker pauses (VAD),
``max_seconds`` of audio, or a cancel; report the input level while it runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from voice.capture import TARGET_RATE, Recorder, to_16k
from voice.errors import VoiceError
from voice.stt import speech_spans

VAD_EVERY_S = 0.3
"""Seconds of new audio between voice-activity checks for the auto-stop."""
WINDOW_EXTRA_S = 1.5
"""Seconds of audio before the silence that each VAD check also looks at."""
STALL_S = 3.0
"""A device that delivers nothing for this long (wall time) has gone away."""


@dataclass(frozen=True)
class Level:
    """Input level of the latest block (dBFS, -inf..0) and seconds recorded."""

    dbfs: float
    seconds: float


def _dbfs(block: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64)))) if len(block) else 0.0
    return 20 * np.log10(rms) if rms > 0 else -120.0


def record(
    recorder: Recorder,
    stop: threading.Event,
    cancel: threading.Event | None = None,
    silence_s: float = 0.8,
    on_level: Callable[[Level], None] | None = None,
) -> np.ndarray:
    """Record with ``recorder`` until ``stop`` is set, ``silence_s`` of silence follows speech
    (VAD), or ``recorder.max_seconds`` of audio; returns mono float32 at 16 kHz (empty when
    ``cancel`` was set).

    Raises:
        VoiceError: the device cannot be opened, or stops delivering audio (unplugged).
    """
    recorder.start()
    blocks: list[np.ndarray] = []
    samples = checked = 0
    idle = 0.0
    pause = _PauseDetector(recorder.rate, silence_s)
    done = False
    try:
        while not stop.is_set() and not (cancel is not None and cancel.is_set()):
            new = recorder.take(timeout=0.1)
            if not new:
                idle += 0.1
                if recorder.ended and recorder.seconds >= recorder.max_seconds - 0.1:
                    break  # the longest recording allowed
                if idle >= STALL_S or recorder.ended:
                    raise VoiceError(f"the microphone {recorder.device.name} stopped delivering audio "
                                     "(unplugged?)")
                continue
            idle = 0.0
            for block in new:  # one at a time: a fast device can deliver many at once
                blocks.append(block)
                samples += len(block)
                if (samples - checked) / recorder.rate >= VAD_EVERY_S:
                    checked = samples
                    if pause.paused(blocks):
                        done = True
                        break
            if on_level is not None:
                on_level(Level(_dbfs(blocks[-1]), samples / recorder.rate))
            if done:
                break
    finally:
        recorder.stop()
    if cancel is not None and cancel.is_set():
        return np.zeros(0, dtype=np.float32)
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return to_16k(audio, recorder.rate)


class _PauseDetector:
    """Speech, then ``silence_s`` without it: the VAD looks only at the last ``silence_s`` +
    :data:`WINDOW_EXTRA_S` seconds each time (checks overlap), so a long recording costs no more
    per check than a short one."""

    def __init__(self, rate: int, silence_s: float) -> None:
        self.rate = rate
        self.silence_s = silence_s
        self.window = int((silence_s + WINDOW_EXTRA_S) * rate)
        self.heard = False

    def paused(self, blocks: list[np.ndarray]) -> bool:
        tail: list[np.ndarray] = []
        size = 0
        for block in reversed(blocks):
            tail.append(block)
            size += len(block)
            if size >= self.window:
                break
        audio16 = to_16k(np.concatenate(tail[::-1])[-self.window:], self.rate)
        spans = speech_spans(audio16)
        if spans:
            self.heard = True
            silence = (len(audio16) - spans[-1][1]) / TARGET_RATE
        else:
            silence = len(audio16) / TARGET_RATE
        return self.heard and silence >= self.silence_s

"""One push-to-talk recording: capture until the key is pressed again, the speaker pauses (VAD),
``max_seconds`` of audio, or a cancel; report the input level while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voice.capture import TARGET_RATE, Recorder, to_16k
from voice.errors import VoiceError
from voice.stt import speech_spans

VAD_EVERY_S = 0.3
"""Seconds of new audio between voice-activity checks for the auto-stop."""
SPECULATE_S = 0.3
"""Silence after speech (seconds) at which transcribing starts, before the recording is over."""
WINDOW_EXTRA_S = 1.5
"""Seconds of audio before the silence that each VAD check also looks at."""
STALL_S = 3.0
"""A device that delivers nothing for this long (wall time) has gone away."""


@dataclass(frozen=True)
class Recorded:
    """A finished recording: mono float32 at 16 kHz, and where (in samples at the device rate,
    from the start) the last speech the VAD heard ended (``None``: none heard)."""

    audio: np.ndarray
    speech_end: int | None


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
    on_pause: Callable[[np.ndarray, int], None] | None = None,
) -> Recorded:
    """Record with ``recorder`` until ``stop`` is set, ``silence_s`` of silence follows speech
    (VAD), or ``recorder.max_seconds`` of audio (empty audio when ``cancel`` was set).

    ``on_pause(audio_16k_so_far, speech_end)`` is called once per pause of :data:`SPECULATE_S`
    after speech — before the recording is known to be over — so the caller can start
    transcribing; if no speech follows, ``speech_end`` is the recording's and that transcript
    stands (see :meth:`voice.session.Voice.listen`).

    Raises:
        VoiceError: the device cannot be opened, or stops delivering audio (unplugged).
    """
    recorder.start()
    blocks: list[np.ndarray] = []
    samples = checked = 0
    idle = 0.0
    pause = _PauseDetector(recorder.rate, silence_s)
    done = False
    speculated: int | None = None
    try:
        while not stop.is_set() and not (cancel is not None and cancel.is_set()):
            new = recorder.take(timeout=0.1)
            if not new:
                idle += 0.1
                if recorder.ended and recorder.seconds >= recorder.max_seconds - 0.1:
                    break  # the longest recording allowed
                if idle >= STALL_S or recorder.ended:
                    raise VoiceError(recorder.lost())
                continue
            idle = 0.0
            for block in new:  # one at a time: a fast device can deliver many at once
                blocks.append(block)
                samples += len(block)
                if (samples - checked) / recorder.rate >= VAD_EVERY_S:
                    checked = samples
                    if pause.paused(blocks, samples):
                        done = True
                        break
                    if (on_pause is not None and pause.silence >= SPECULATE_S
                            and pause.speech_end is not None and pause.speech_end != speculated):
                        speculated = pause.speech_end
                        on_pause(to_16k(np.concatenate(blocks), recorder.rate), speculated)
            if on_level is not None:
                on_level(Level(_dbfs(blocks[-1]), samples / recorder.rate))
            if done:
                break
    finally:
        recorder.stop()
    if cancel is not None and cancel.is_set():
        return Recorded(np.zeros(0, dtype=np.float32), None)
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return Recorded(to_16k(audio, recorder.rate), pause.speech_end)


class _PauseDetector:
    """Speech, then ``silence_s`` without it: the VAD looks only at the last ``silence_s`` +
    :data:`WINDOW_EXTRA_S` seconds each time (checks overlap), so a long recording costs no more
    per check than a short one."""

    def __init__(self, rate: int, silence_s: float) -> None:
        self.rate = rate
        self.silence_s = silence_s
        self.window = int((silence_s + WINDOW_EXTRA_S) * rate)
        self.heard = False
        self.silence = 0.0
        """Seconds of silence at the end, as of the last check."""
        self.speech_end: int | None = None
        """Sample (device rate, from the start) where the last heard speech ended."""

    def paused(self, blocks: list[np.ndarray], total: int) -> bool:
        """Whether the recording of ``total`` samples so far (``blocks``) ends in a pause."""
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
            self.silence = (len(audio16) - spans[-1][1]) / TARGET_RATE
            # the same instant in device samples; rounded to a block so re-checks agree
            end = total - int(self.silence * self.rate)
            block = int(self.rate * 0.05)
            self.speech_end = end - end % block
        else:
            self.silence = len(audio16) / TARGET_RATE
        return self.heard and self.silence >= self.silence_s

"""Speech-to-text with faster-whisper, tuned for short push-to-talk utterances, and the guards
that keep silence, noise or a stray key press from turning into "Thank you." or "you"."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voice.capture import TARGET_RATE
from voice.errors import VoiceError

LOG = logging.getLogger("hearth.voice")

MIN_SPEECH_S = 0.3
"""Less detected speech than this (seconds) is a key pressed by mistake: nothing is transcribed."""
NO_SPEECH_MAX = 0.6
"""Segments whose ``no_speech_prob`` is above this are dropped (Whisper's own no_speech_threshold)."""
VAD_THRESHOLD = 0.5
"""Silero VAD speech probability threshold (faster-whisper's default)."""


@dataclass(frozen=True)
class Transcript:
    """``text`` is empty when no speech was caught. Seconds: ``audio_s`` recorded, ``speech_s``
    the VAD found, ``transcribe_s`` spent in the model."""

    text: str
    audio_s: float
    speech_s: float
    transcribe_s: float


def speech_spans(audio: np.ndarray, min_silence_ms: int = 300) -> list[tuple[int, int]]:
    """(start, end) sample indexes of speech in 16 kHz float32 ``audio`` (Silero VAD, through
    faster-whisper's ``get_speech_timestamps``)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=VAD_THRESHOLD, min_silence_duration_ms=min_silence_ms, speech_pad_ms=200)
    return [(s["start"], s["end"]) for s in get_speech_timestamps(audio, options, sampling_rate=TARGET_RATE)]


class Transcriber:
    """A faster-whisper model, loaded once (on first use, or :meth:`load` in the background) and
    kept. int8 on the CPU with ``threads`` threads, so llama.cpp keeps the other cores.

    Args:
        model_dir: a CTranslate2 Whisper model directory (see :mod:`voice.speech_model`).
        threads: CPU threads for the model.
    """

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def english_only(self) -> bool:
        return self.model_dir.name.endswith(".en")

    def load(self) -> None:
        """Raises:
            VoiceError: the model directory is missing files or CTranslate2 cannot read it."""
        with self._lock:
            if self._model is not None:
                return
            if not (self.model_dir / "model.bin").is_file():
                raise VoiceError(f"speech model {self.model_dir} has no model.bin (missing or incomplete)")
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            try:
                self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                           cpu_threads=self.threads)
            except (RuntimeError, ValueError, OSError) as exc:
                raise VoiceError(f"cannot load the speech model {self.model_dir.name}: "
                                 f"{str(exc).splitlines()[0]} (corrupt?)") from None
            LOG.info("speech model %s loaded in %.2f s", self.model_dir.name, time.perf_counter() - started)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Text of ``audio`` (mono float32, 16 kHz). Non-speech is trimmed by the VAD first; too
        little speech gives an empty transcript without running the model; beam size 1, no
        timestamps, no conditioning on earlier text (short utterances: faster, and no carried-over
        hallucinations); segments Whisper itself thinks are not speech are dropped.

        Raises:
            VoiceError: the model cannot be loaded.
        """
        self.load()
        with self._run_lock:  # one transcription at a time (a speculative one may be running)
            return self._transcribe(audio)

    def _transcribe(self, audio: np.ndarray) -> Transcript:
        audio_s = len(audio) / TARGET_RATE
        started = time.perf_counter()
        spans = speech_spans(audio)
        speech_s = sum(end - start for start, end in spans) / TARGET_RATE
        if speech_s < MIN_SPEECH_S:
            return Transcript("", audio_s, speech_s, time.perf_counter() - started)
        speech = np.concatenate([audio[start:end] for start, end in spans])
        segments, _info = self._model.transcribe(
            speech, language="en" if self.english_only else None, beam_size=1,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
            no_speech_threshold=NO_SPEECH_MAX,
        )
        kept = [s.text.strip() for s in segments if s.no_speech_prob <= NO_SPEECH_MAX and s.text.strip()]
        text = " ".join(kept)
        LOG.info("transcribed %.2f s (%.2f s speech) in %.3f s: %d characters",
                 audio_s, speech_s, time.perf_counter() - started, len(text))
        return Transcript(text, audio_s, speech_s, time.perf_counter() - started)

"""Push-to-talk as the TUI and the CLI use it: the configured microphone, one recording at a
time, and the speech model (loaded on first use, or warmed up in the background, and kept)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from engine.config import VoiceSettings
from voice.capture import Recorder, find_device
from voice.errors import VoiceError
from voice.listen import Level, record
from voice.speech_model import resolve_speech_model
from voice.stt import Transcriber, Transcript

LOG = logging.getLogger("hearth.voice")


@dataclass(frozen=True)
class Heard:
    """A transcript with the recording's timings: ``record_s`` wall seconds from start to stop,
    ``stop_to_text_s`` from the end of recording to the transcript."""

    transcript: Transcript
    record_s: float
    stop_to_text_s: float

    @property
    def text(self) -> str:
        return self.transcript.text


class Voice:
    """Args: the ``[voice]`` settings; ``models_dir``: hearth's model store."""

    def __init__(self, settings: VoiceSettings, models_dir: Path) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self._transcriber: Transcriber | None = None
        self._lock = threading.Lock()

    def transcriber(self) -> Transcriber:
        """The speech model, resolved (and fetched into the store) on first use, then loaded.

        Raises:
            VoiceError: the model cannot be found, fetched or loaded.
        """
        with self._lock:
            if self._transcriber is None:
                directory = resolve_speech_model(self.settings.stt_model, self.models_dir)
                self._transcriber = Transcriber(directory, threads=self.settings.stt_threads)
        self._transcriber.load()
        return self._transcriber

    def recorder(self) -> Recorder:
        """The microphone in use: the other machine's through ``voice.audio_socket`` (set by
        ``hearth connect``), else this machine's ``voice.input_device``.

        Raises:
            VoiceError: no PortAudio, no or no such device, the audio link not reachable.
        """
        if self.settings.audio_socket:
            from voice.link import AudioLink

            return AudioLink(self.settings.audio_socket).recorder(self.settings.max_seconds)
        return Recorder(find_device(self.settings.input_device), max_seconds=self.settings.max_seconds)

    def listen(self, stop: threading.Event, cancel: threading.Event | None = None,
               on_level: Callable[[Level], None] | None = None,
               on_stopped: Callable[[], None] | None = None,
               recorder: Recorder | None = None) -> Heard:
        """Record from the configured microphone (or ``recorder``) until ``stop``, a pause, or
        the longest recording; transcribe. ``on_stopped`` is called when recording ends.

        Transcription starts speculatively at the first short pause after speech, while the
        recording still runs: if no more speech comes before it stops, that transcript is the
        answer, so the time from stop to text is mostly gone; otherwise it is discarded.

        Raises:
            VoiceError: no PortAudio, no or no such device, refused rates, device gone, model.
        """
        if recorder is None:
            recorder = self.recorder()
        guesses: dict[int, _Guess] = {}

        def on_pause(audio, speech_end: int) -> None:
            guesses[speech_end] = _Guess(self, audio)

        started = time.perf_counter()
        recorded = record(recorder, stop, cancel, self.settings.silence_ms / 1000, on_level, on_pause)
        stopped = time.perf_counter()
        if on_stopped is not None:
            on_stopped()
        if cancel is not None and cancel.is_set():
            return Heard(Transcript("", 0.0, 0.0, 0.0), stopped - started, 0.0)
        guess = guesses.get(recorded.speech_end) if recorded.speech_end is not None else None
        transcript = guess.result() if guess is not None else None
        if transcript is not None:
            LOG.info("used the transcript started at the pause (no speech after it)")
        else:
            transcript = self.transcriber().transcribe(recorded.audio)
        return Heard(transcript, stopped - started, time.perf_counter() - stopped)

    def transcribe_file(self, path: Path) -> Heard:
        """Transcribe an audio file (any rate or format PyAV reads; resampled to 16 kHz mono).
        Its length is read from the header first: a file longer than ``voice.max_seconds`` is
        refused before any of it is decoded (two hours of audio would take ~1.8 GB).

        Raises:
            VoiceError: unreadable file, longer than ``voice.max_seconds``, or the model.
        """
        # faster-whisper and PyAV are heavy (FFmpeg, CTranslate2): loaded when a file is read
        from faster_whisper import decode_audio

        seconds = audio_seconds(path)
        if seconds > self.settings.max_seconds:
            raise VoiceError(f"{path.name} is {seconds:.0f} s of audio; the longest hearth transcribes is "
                             f"{self.settings.max_seconds} s (voice.max_seconds, up to 600)")
        try:
            audio = decode_audio(str(path), sampling_rate=16000)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many types for a bad file
            raise VoiceError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
        started = time.perf_counter()
        transcript = self.transcriber().transcribe(audio)
        return Heard(transcript, 0.0, time.perf_counter() - started)

    def with_device(self, device: str) -> Voice:
        return Voice(replace(self.settings, input_device=device), self.models_dir)


def audio_seconds(path: Path) -> float:
    """The length of an audio file in seconds, from its container's header (PyAV; nothing is
    decoded).

    Raises:
        VoiceError: not a file PyAV can open, or no audio stream.
    """
    import av  # PyAV (FFmpeg), faster-whisper's own audio reader: heavy, loaded here

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise VoiceError(f"{path.name} has no audio")
            if container.duration:
                return container.duration / av.time_base
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, OSError) as exc:
        raise VoiceError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    raise VoiceError(f"{path.name}: its length cannot be read from the header")


class _Guess:
    """A transcription started before the recording ended, on its own thread."""

    def __init__(self, voice: Voice, audio) -> None:
        self._transcript: Transcript | None = None
        self._thread = threading.Thread(target=self._run, args=(voice, audio), daemon=True)
        self._thread.start()

    def _run(self, voice: Voice, audio) -> None:
        try:
            self._transcript = voice.transcriber().transcribe(audio)
        except Exception:  # noqa: BLE001 - the normal path transcribes again and reports errors
            self._transcript = None

    def result(self) -> Transcript | None:
        self._thread.join()
        return self._transcript

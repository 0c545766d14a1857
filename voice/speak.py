"""Spoken answers: the reply is cut into sentences as it streams, each made speakable (Markdown
and code are not read verbatim) and spoken in order by an offline TTS (espeak-ng, or Piper if
installed) on a background thread, starting with the first complete sentence."""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from engine.config import VoiceSettings
from voice.errors import VoiceError

LOG = logging.getLogger("hearth.voice")

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no",
    "fig", "inc", "ltd", "co", "mt", "u.s", "a.m", "p.m", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
}
"""Words whose trailing period does not end a sentence (lower case, without the final period)."""

_END = re.compile(r"([.!?…]+)([\"')\]]*)(\s+)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def speakable(text: str) -> str:
    """One line of Markdown as it should be read: no emphasis marks, no inline-code backticks,
    link text without the URL, no heading or list markers, no table pipes."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)       # images: the alt text
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)         # links: the link text
    text = re.sub(r"`([^`]*)`", r"\1", text)                     # inline code: its text
    text = re.sub(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1", r"\2", text)  # emphasis
    text = re.sub(r"^\s{0,3}#{1,6}\s+", "", text)                # headings
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", text)        # list markers
    text = re.sub(r"^\s*>\s?", "", text)                         # quotes
    text = text.replace("|", ", ").strip(" ,")
    text = re.sub(r"https?://\S+", "a link", text)
    return re.sub(r"\s+", " ", text).strip()


class SentenceSplitter:
    """Feed streamed text; get back complete, speakable sentences in order.

    A sentence ends at ., ! or ? followed by white space — not after an abbreviation, an initial
    or inside a number (3.14) — and at the end of a line that is a heading or list item. A fenced
    code block becomes one "(code block)" sentence.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._in_code = False

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            out.extend(self._line(line, complete=True))
        if not self._in_code:
            done, self._buffer = self._split(self._buffer)
            out.extend(done)
        return [s for s in out if s]

    def flush(self) -> list[str]:
        """The rest, at the end of the reply."""
        rest, self._buffer = self._buffer, ""
        if self._in_code:
            self._in_code = False
            return []
        return [s for s in self._line(rest, complete=True) if s]

    def _line(self, line: str, complete: bool) -> list[str]:
        if _FENCE.match(line):
            self._in_code = not self._in_code
            return ["(code block)"] if self._in_code else []
        if self._in_code:
            return []
        done, rest = self._split(line + " ")
        rest = rest.strip()
        return [*done, speakable(rest)] if rest else done

    @staticmethod
    def _split(text: str) -> tuple[list[str], str]:
        sentences = []
        start = 0
        for match in _END.finditer(text):
            end = match.end(2)
            candidate = text[start:end]
            before = text[start:match.start(1)].rsplit(None, 1)
            word = before[-1].lower().strip("(\"'") if before else ""
            if match.group(1) == "." and (word in ABBREVIATIONS or len(word) == 1 and word.isalpha()):
                continue
            if match.group(1) == "." and re.fullmatch(r"\d+", word) and not before[:-1]:
                continue  # "1." opening a numbered item
            sentences.append(speakable(candidate))
            start = match.end()
        return [s for s in sentences if s], text[start:]


class Speaker:
    """Speaks sentences in order on a background thread.

    Args:
        engine: ``espeak-ng`` or ``piper``.
        output_dir: write each sentence to ``NNN.wav`` here instead of playing it (tests, benches).
        piper_model: the .onnx voice for Piper.
        output_device: the speaker for audio played here (Piper; espeak-ng plays by itself).
        audio_socket: play on another machine's speaker through this socket (voice/link.py).

    Raises:
        VoiceError: the TTS program is not installed.
    """

    def __init__(self, engine: str = "espeak-ng", output_dir: Path | None = None, piper_model: str = "",
                 output_device: str = "", audio_socket: str = "") -> None:
        if shutil.which(engine) is None:
            hint = "sudo apt-get install espeak-ng" if engine == "espeak-ng" else "pip install piper-tts"
            raise VoiceError(f"{engine} is not installed, so replies cannot be spoken ({hint})")
        self.engine = engine
        self.output_dir = output_dir
        self.piper_model = piper_model
        self.output_device = output_device
        self.audio_socket = audio_socket
        self._cancel = threading.Event()
        """Set to cut the sentence playing now short (a fresh one per sentence)."""
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._count = 0
        self.spoken: list[str] = []
        self.finished_at: list[float] = []
        """``time.perf_counter()`` when each sentence's audio was done (played, or written)."""
        self.idle = threading.Event()
        self.idle.set()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hearth-speaker")
        self._thread.start()

    @classmethod
    def for_settings(cls, settings: VoiceSettings) -> Speaker:
        """The speaker ``[voice]`` asks for (tts, piper_model, output_device, audio_socket).

        Raises:
            VoiceError: the TTS program is not installed.
        """
        return cls(settings.tts, piper_model=settings.piper_model, output_device=settings.output_device,
                   audio_socket=settings.audio_socket)

    def say(self, sentence: str) -> None:
        self.idle.clear()
        self._queue.put(sentence)

    def stop(self) -> None:
        """Stop speaking now and drop what is queued."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
            self._cancel.set()
        if self.engine == "piper" and self.output_dir is None and not self.audio_socket:
            from voice.capture import sounddevice  # numpy and PortAudio: only with Piper

            sounddevice().stop()
        self.idle.set()

    def close(self) -> None:
        self.stop()
        self._queue.put(None)

    def _command(self, sentence: str, wav: Path | None) -> tuple[list[str], str | None]:
        """espeak-ng plays through the system's audio itself; Piper only writes a WAV (played
        afterwards with sounddevice, see :meth:`_play`)."""
        if self.engine == "piper":
            return ["piper", "--model", self.piper_model, "--output_file", str(wav)], sentence
        return (["espeak-ng", "-w", str(wav), sentence] if wav else ["espeak-ng", sentence]), None

    @property
    def _plays_wav(self) -> bool:
        """Whether speech is synthesized to a WAV that hearth then plays (Piper; any engine over
        the audio link), rather than played by the TTS program itself."""
        return self.engine == "piper" or bool(self.audio_socket)

    def _play(self, wav: Path, cancel: threading.Event) -> None:
        """Play a 16-bit mono WAV on the other machine's speaker (``audio_socket``) or on
        ``output_device`` (sounddevice); :meth:`stop` cuts it short."""
        import wave

        with wave.open(str(wav)) as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        if self.audio_socket:
            from voice.link import AudioLink

            try:
                AudioLink(self.audio_socket).play(pcm, rate, cancel)
            except VoiceError as error:
                LOG.warning("cannot play speech: %s", error.message)
            return
        import numpy as np

        from voice.capture import find_output_device, sounddevice  # numpy and PortAudio: only here

        sd = sounddevice()
        try:
            sd.play(np.frombuffer(pcm, dtype="<i2"), rate, device=find_output_device(self.output_device).index)
            sd.wait()
        except (sd.PortAudioError, VoiceError) as exc:
            LOG.warning("cannot play speech: %s", exc)

    def _run(self) -> None:
        while True:
            sentence = self._queue.get()
            if sentence is None:
                return
            wav = None
            self._count += 1
            if self.output_dir is not None:
                wav = self.output_dir / f"{self._count:03d}.wav"
            elif self._plays_wav:
                wav = Path(tempfile.gettempdir()) / f"hearth-speech-{os.getpid()}-{self._count}.wav"
            argv, stdin = self._command(sentence, wav)
            with self._lock:
                cancel = self._cancel = threading.Event()
                self._process = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
            try:
                self._process.communicate(stdin, timeout=120)
            except subprocess.TimeoutExpired:
                self._process.kill()
            if self.output_dir is None and wav is not None:  # play what the TTS wrote
                if wav.exists() and not self.idle.is_set() and not cancel.is_set():
                    self._play(wav, cancel)
                wav.unlink(missing_ok=True)
            self.spoken.append(sentence)
            self.finished_at.append(time.perf_counter())
            if self._queue.empty():
                self.idle.set()

"""Real audio for the voice tests: espeak-ng speech, silence and noise, played into PortAudio
through file-backed ALSA capture devices (an ALSA "file" PCM whose infile is the raw speech)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import wave
from pathlib import Path

import numpy as np

QUESTION = "What is the capital of France? Answer in one word."


def espeak_wav(text: str, path: Path) -> Path:
    """espeak-ng speech as a 22,050 Hz 16-bit mono WAV."""
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(float32 samples in -1..1, rate in Hz) of a 16-bit mono WAV."""
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return data.astype(np.float32) / 32768, w.getframerate()


def write_raw(samples: np.ndarray, path: Path) -> Path:
    """Raw signed 16-bit little-endian, as the ALSA file plugin plays it."""
    np.clip(samples * 32768, -32768, 32767).astype("<i2").tofile(path)
    return path


def write_wav(samples: np.ndarray, rate: int, path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(samples * 32768, -32768, 32767).astype("<i2").tobytes())
    return path


def make_audio(directory: Path) -> dict[str, Path]:
    """The recordings: the question at 16 kHz and 48 kHz (raw, for devices) and as WAVs at
    22,050 and 48,000 Hz, 3 s of silence, 3 s of white noise at -20 dBFS."""
    import soxr

    directory.mkdir(parents=True, exist_ok=True)
    speech, rate = read_wav(espeak_wav(QUESTION, directory / "question-22050.wav"))
    lead = np.zeros(int(0.3 * rate), dtype=np.float32)  # a breath before speaking
    speech = np.concatenate([lead, speech])
    rng = np.random.default_rng(7)
    files = {
        "question16": write_raw(soxr.resample(speech, rate, 16000), directory / "question-16000.raw"),
        "question48": write_raw(soxr.resample(speech, rate, 48000), directory / "question-48000.raw"),
        "wav22050": directory / "question-22050.wav",
        "wav48000": write_wav(soxr.resample(speech, rate, 48000), 48000, directory / "question-48000.wav"),
        "silence": write_raw(np.zeros(3 * 16000, dtype=np.float32), directory / "silence.raw"),
        "noise": write_raw((rng.standard_normal(3 * 16000) * 0.1).astype(np.float32), directory / "noise.raw"),
    }
    return files


class ClockedSilence:
    """A FIFO that silence is written into at a microphone's pace (16 kHz s16le mono, 20 ms at a
    time): as the infile of a file-backed ALSA device it clocks the capture as a microphone is
    (here at about twice real time: ALSA's file plugin counts a whole period for each read, whatever
    the pipe held). The null slave alone delivers audio as fast as it is read: a recording of
    ``max_seconds`` 600 was over in a second or two, sometimes before the test broke it."""

    BLOCK_S = 0.02

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        # (read-write: the FIFO always has a writer, so ALSA's opens of it never wait; non-blocking:
        # while no recording reads, the pipe keeps its last seconds and the rest is dropped)
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True, name="clocked-silence")
        self._thread.start()

    def _write(self) -> None:
        block = bytes(int(16000 * self.BLOCK_S) * 2)
        due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                os.write(self._fd, block)
            except BlockingIOError:
                pass
            due += self.BLOCK_S

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self._fd)


DEVICES = {"filemic": "question16", "filemic48": "question48", "silentmic": "silence", "noisymic": "noise",
           "clockedmic": "clocked_silence"}
"""ALSA capture device name -> the recording it plays (``clockedmic``: silence at a microphone's
pace, from a :class:`ClockedSilence`; the others as fast as they are read)."""


def write_alsa_config(audio: dict[str, Path], path: Path) -> Path:
    blocks = ["</usr/share/alsa/alsa.conf>"]
    for device, key in DEVICES.items():
        blocks.append(f'pcm.{device} {{\n    type file\n    slave.pcm "null"\n    file "/dev/null"\n'
                      f'    infile "{audio[key]}"\n    format "raw"\n}}')
    path.write_text("\n".join(blocks) + "\n")
    return path


def install(directory: Path) -> dict[str, Path]:
    """Make the audio and the ALSA config and point this process (and its children) at it.
    Must run before PortAudio is first loaded in the process."""
    audio = make_audio(directory)
    audio["clocked_silence"] = ClockedSilence(directory / "silence.fifo").path  # (written until the tests end)
    os.environ["ALSA_CONFIG_PATH"] = str(write_alsa_config(audio, directory / "asound.conf"))
    return audio

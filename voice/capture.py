"""Microphone capture through sounddevice (PortAudio): device lookup, a recorder whose callback
only copies blocks into a queue, and resampling to 16 kHz mono float32 with soxr.

sounddevice (and so PortAudio and ALSA) is imported on first use, after ALSA's error printer is
silenced: alsa-lib writes its complaints straight to fd 2, which is the terminal the TUI draws on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from voice.errors import VoiceError

LOG = logging.getLogger("hearth.voice")

TARGET_RATE = 16_000
"""Hz: what Whisper models take (OpenAI Whisper's audio.py SAMPLE_RATE)."""
BLOCK_S = 0.05
"""Seconds per captured block (the callback's granularity and the level meter's)."""

_alsa_handler: Any = None
_sd: Any = None


def _silence_alsa() -> None:
    """Route alsa-lib's error messages to hearth's log instead of fd 2 (snd_lib_error_set_handler).
    The handler is variadic in C; the fixed arguments are enough to log where it came from."""
    global _alsa_handler
    if _alsa_handler is not None:
        return
    name = ctypes.util.find_library("asound")
    if not name:
        return
    try:
        asound = ctypes.CDLL(name)
    except OSError:
        return
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)

    def handler(file, line, function, err, fmt):  # noqa: ANN001 - C callback
        LOG.debug("ALSA %s:%d %s: %s", (file or b"").decode(), line, (function or b"").decode(), (fmt or b"").decode())

    _alsa_handler = handler_type(handler)
    asound.snd_lib_error_set_handler(_alsa_handler)


def sounddevice() -> Any:
    """The sounddevice module, imported once.

    Raises:
        VoiceError: PortAudio is not installed.
    """
    global _sd
    if _sd is None:
        _silence_alsa()
        try:
            import sounddevice as sd
        except OSError:
            raise VoiceError("PortAudio is not installed, so hearth cannot record "
                             "(Debian/Raspberry Pi OS: sudo apt-get install libportaudio2)") from None
        _sd = sd
    return _sd


@dataclass(frozen=True)
class InputDevice:
    """A PortAudio device (for recording, or for playback from :func:`find_output_device`)."""

    index: int
    name: str
    default_rate: float
    channels: int
    is_default: bool


def _devices(output: bool) -> list[InputDevice]:
    sd = sounddevice()
    side, key = (1, "max_output_channels") if output else (0, "max_input_channels")
    try:
        default = sd.default.device[side]
    except Exception:  # noqa: BLE001 - no default device is a normal state
        default = -1
    return [InputDevice(i, d["name"], float(d["default_samplerate"]), int(d[key]), i == default)
            for i, d in enumerate(sd.query_devices()) if d[key] > 0]


def input_devices() -> list[InputDevice]:
    """Devices that can record, as PortAudio lists them.

    Raises:
        VoiceError: PortAudio is not installed.
    """
    return _devices(output=False)


def _where() -> str:
    over_ssh = " (over SSH, hearth records on the machine it runs on: `hearth connect` from your own " \
        "computer uses its microphone instead)" if os.environ.get("SSH_CONNECTION") else ""
    return f"on {socket.gethostname()}{over_ssh}"


def _find(devices: list[InputDevice], spec: str | int | None, none: str, named: str) -> InputDevice:
    if not devices:
        raise VoiceError(f"no {none} {_where()}")
    if spec in (None, ""):
        return next((d for d in devices if d.is_default), devices[0])
    if isinstance(spec, int) or str(spec).isdigit():
        match = [d for d in devices if d.index == int(spec)]
    else:
        match = [d for d in devices if str(spec).lower() in d.name.lower()]
    if not match:
        known = ", ".join(f"{d.index}: {d.name}" for d in devices)
        raise VoiceError(f"no {named} {spec!r} {_where()} ({named}s: {known})")
    return match[0]


def find_device(spec: str | int | None) -> InputDevice:
    """The input device named (substring, case-insensitive) or numbered ``spec``; the default
    input device when ``spec`` is empty.

    Raises:
        VoiceError: no PortAudio, no input device at all, or none matching ``spec`` (the known
            ones are named).
    """
    try:
        return _find(input_devices(), spec, "microphone", "input device")
    except VoiceError as error:
        raise VoiceError(f"{error.message}; text chat still works") from None


def find_output_device(spec: str | int | None) -> InputDevice:
    """The output device (speaker) named or numbered ``spec``; the default one when empty.

    Raises:
        VoiceError: no PortAudio, no output device, or none matching ``spec``.
    """
    return _find(_devices(output=True), spec, "speaker", "output device")


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz from mono float32 at ``rate`` Hz (soxr, high quality)."""
    if rate == TARGET_RATE:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio, rate, TARGET_RATE).astype(np.float32, copy=False)


class Recorder:
    """One recording from an input device, 16-bit mono (what every microphone offers), delivered
    as float32 in -1..1.

    The PortAudio callback only copies each block into a queue; :meth:`take` drains it on the
    caller's thread. Capture stops by itself after ``max_seconds`` of audio.

    Args:
        device: the device (see :func:`find_device`).
        max_seconds: the longest recording, seconds of audio.
        rates: sample rates to try, Hz, in order; the device's default rate is tried last.
    """

    def __init__(self, device: InputDevice, max_seconds: float = 30.0, rates: tuple[int, ...] = (TARGET_RATE,)) -> None:
        self.device = device
        self.max_seconds = max_seconds
        self.rates = rates
        self.rate = 0
        self._queue: queue.Queue[np.ndarray] = queue.Queue()
        self._frames = 0
        self._stream: Any = None
        self._failed = threading.Event()

    def start(self) -> None:
        """Open the stream at the first rate the device accepts.

        Raises:
            VoiceError: the device refuses every rate tried, or cannot be opened.
        """
        sd = sounddevice()
        tried = list(dict.fromkeys([*self.rates, int(self.device.default_rate)]))
        errors = []
        for rate in tried:
            try:
                sd.check_input_settings(device=self.device.index, channels=1, samplerate=rate, dtype="int16")
                stream = sd.InputStream(device=self.device.index, channels=1, samplerate=rate, dtype="int16",
                                        blocksize=int(rate * BLOCK_S), callback=self._callback,
                                        finished_callback=self._finished)
                self.rate = rate
                self._stream = stream
                stream.start()
                LOG.info("recording from %s at %d Hz", self.device.name, rate)
                return
            except (sd.PortAudioError, ValueError) as exc:
                errors.append(f"{rate} Hz: {exc}")
        raise VoiceError(f"{self.device.name} refuses every sample rate tried ({'; '.join(errors)})")

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        self._queue.put(indata[:, 0].astype(np.float32) / 32768.0)
        self._frames += frames
        if self._frames >= self.max_seconds * self.rate:
            raise sounddevice().CallbackStop

    def _finished(self) -> None:
        self._failed.set()

    @property
    def seconds(self) -> float:
        """Seconds of audio captured so far."""
        return self._frames / self.rate if self.rate else 0.0

    @property
    def ended(self) -> bool:
        """The stream ended by itself (``max_seconds`` reached, or the device went away)."""
        return self._failed.is_set()

    def microphone(self) -> str:
        """Which microphone, as the user is told: ``USB Mic on pi``."""
        return f"{self.device.name} on {socket.gethostname()}"

    def lost(self) -> str:
        """Why the recording broke off, as the user is told (:attr:`ended` before the longest
        recording)."""
        return f"the microphone {self.device.name} stopped delivering audio (unplugged?)"

    def take(self, timeout: float = 0.1) -> list[np.ndarray]:
        """Blocks captured since the last call (waits up to ``timeout`` s for the first)."""
        blocks = []
        try:
            blocks.append(self._queue.get(timeout=timeout))
            while True:
                blocks.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return blocks

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as exc:  # noqa: BLE001 - a vanished device may fail to close
                LOG.warning("closing the input stream: %s", exc)
            self._stream = None

"""Audio over a Unix socket: the microphone and speaker of another machine, as hearth on this one
uses them (``voice.audio_socket``, set by ``hearth connect``; the other end is voice/relay.py).

The protocol, one connection per operation: the client writes one JSON line, the relay answers
with one JSON line, then raw audio flows (signed 16-bit little-endian mono PCM):

- ``{"op": "hello"}`` -> ``{"host", "input", "input_error", "output", "output_error"}``.
- ``{"op": "record", "max_seconds": S}`` -> ``{"device", "rate": 16000}`` or ``{"error"}``, then
  16 kHz PCM (32,000 bytes per second) until the client shuts down its side, the longest
  recording, or the device fails (then the relay closes the connection).
- ``{"op": "play", "rate": HZ, "bytes": N}`` + N bytes of PCM -> ``{"done": true}`` once played
  (or ``{"error"}``); the client closing the connection stops the playback at once.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voice.capture import TARGET_RATE, InputDevice, Recorder
from voice.errors import VoiceError

LOG = logging.getLogger("hearth.voice")

LINK_RATE = TARGET_RATE
"""Hz of the recorded audio on the link: what Whisper takes, so nothing is resampled here."""
CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for the relay's answer line (an SSH round trip, and opening the device)."""
MAX_LINE = 64 * 1024
"""Bytes: the longest header line either side accepts."""
REMOTE_PREFIX = "hearth-voice."
"""``hearth connect`` makes the socket's directory on the remote with a name starting so."""


def remove_socket(path: str) -> None:
    """Remove the forwarded socket ``path`` and its directory when that is ``hearth connect``'s
    (named :data:`REMOTE_PREFIX`..., and empty then): the remote hearth's clean-up at exit, for a
    connection that dropped before ``hearth connect`` could remove them. Never raises."""
    socket_path = Path(path)
    try:
        if socket_path.is_socket():
            socket_path.unlink()
        if socket_path.parent.name.startswith(REMOTE_PREFIX):
            socket_path.parent.rmdir()
    except OSError:
        pass


def send_line(sock: socket.socket, header: dict[str, Any]) -> None:
    sock.sendall(json.dumps(header).encode() + b"\n")


def read_line(sock: socket.socket, timeout: float | None = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """One JSON header line from ``sock``, read byte-wise so nothing after it is consumed.

    Raises:
        ConnectionError: the peer closed first, or the line is too long or not a JSON object.
        TimeoutError: no full line within ``timeout`` seconds.
    """
    sock.settimeout(timeout)
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("closed before answering")
        line += byte
        if len(line) > MAX_LINE:
            raise ConnectionError("header line too long")
    try:
        value = json.loads(line)
    except ValueError:
        raise ConnectionError("not a JSON header line") from None
    if not isinstance(value, dict):
        raise ConnectionError("not a JSON object")
    return value


@dataclass(frozen=True)
class LinkInfo:
    """What the other machine offers: its host name, microphone and speaker (``None`` with the
    reason in ``*_error`` when it has none)."""

    host: str
    input: str | None
    input_error: str | None
    output: str | None
    output_error: str | None

    def microphone(self) -> str:
        """``filemic on laptop (over SSH)``."""
        return f"{self.input} on {self.host} (over SSH)"


class AudioLink:
    """The relay at the Unix socket ``path`` (forwarded by OpenSSH from the user's computer)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _connect(self, header: dict[str, Any]) -> socket.socket:
        """A connection with ``header`` sent.

        Raises:
            VoiceError: no relay answering at the socket.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(self.path)
            send_line(sock, header)
        except OSError as exc:
            sock.close()
            raise self._unreachable(exc) from None
        return sock

    def _unreachable(self, exc: BaseException) -> VoiceError:
        return VoiceError(f"the microphone and speaker of your computer are not reachable through "
                          f"{self.path} ({exc}); the SSH connection of `hearth connect` has closed, "
                          "so voice is off until you reconnect — text chat still works")

    def _open(self, header: dict[str, Any]) -> tuple[socket.socket, dict[str, Any]]:
        """A connection with ``header`` sent and the relay's answer read.

        Raises:
            VoiceError: no relay answering at the socket, or it reported an error.
        """
        sock = self._connect(header)
        try:
            answer = read_line(sock)
        except (OSError, ConnectionError) as exc:
            sock.close()
            raise self._unreachable(exc) from None
        if answer.get("error"):
            sock.close()
            raise VoiceError(str(answer["error"]))
        return sock, answer

    def info(self) -> LinkInfo:
        """The other machine's devices.

        Raises:
            VoiceError: the relay is not reachable.
        """
        sock, answer = self._open({"op": "hello"})
        sock.close()
        text = lambda key: str(answer[key]) if answer.get(key) else None  # noqa: E731
        return LinkInfo(str(answer.get("host") or "your computer"), text("input"), text("input_error"),
                        text("output"), text("output_error"))

    def recorder(self, max_seconds: float) -> LinkRecorder:
        """A recorder from the other machine's microphone.

        Raises:
            VoiceError: the relay is not reachable, or that machine has no microphone.
        """
        info = self.info()
        if info.input is None:
            raise VoiceError(info.input_error or f"no microphone on {info.host}; text chat still works")
        return LinkRecorder(self, info, max_seconds)

    def play(self, pcm: bytes, rate: int, cancel: threading.Event) -> None:
        """Play ``pcm`` (s16le mono at ``rate`` Hz) on the other machine's speaker; return when it
        has played, or at once when ``cancel`` is set (the playback stops there too).

        Raises:
            VoiceError: the relay is not reachable, or the speaker failed.
        """
        sock = self._connect({"op": "play", "rate": rate, "bytes": len(pcm)})
        try:
            sock.sendall(pcm)
            while not cancel.is_set():
                if select.select([sock], [], [], 0.05)[0]:
                    answer = read_line(sock, timeout=CONNECT_TIMEOUT_S)
                    if answer.get("error"):
                        raise VoiceError(str(answer["error"]))
                    return
        except (OSError, ConnectionError) as exc:
            raise VoiceError(f"the speaker of your computer went away while speaking ({exc})") from None
        finally:
            sock.close()


class LinkRecorder(Recorder):
    """A recording from the other machine's microphone, read from the link: the same interface as
    :class:`voice.capture.Recorder` (16 kHz float32 blocks in a queue), filled by a reader thread.

    The recording ends when the caller stops it (the relay then closes), at ``max_seconds``, or
    when the link breaks — :attr:`ended` then tells the recording loop, which reports
    :meth:`lost` as the error.
    """

    def __init__(self, link: AudioLink, info: LinkInfo, max_seconds: float) -> None:
        super().__init__(InputDevice(-1, info.microphone(), float(LINK_RATE), 1, True), max_seconds, (LINK_RATE,))
        self.link = link
        self.info = info
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Raises:
            VoiceError: the relay is not reachable, or the microphone there cannot be opened."""
        self._sock, answer = self.link._open({"op": "record", "max_seconds": self.max_seconds})
        self.rate = int(answer.get("rate") or LINK_RATE)
        if self.rate != LINK_RATE:
            self._sock.close()
            raise VoiceError(f"the relay sends {self.rate} Hz audio; hearth takes {LINK_RATE} Hz")
        self._sock.settimeout(None)
        LOG.info("recording from %s through %s", self.device.name, self.link.path)
        self._reader = threading.Thread(target=self._read, args=(self._sock,), daemon=True, name="hearth-link-mic")
        self._reader.start()

    def _read(self, sock: socket.socket) -> None:
        block_bytes = int(LINK_RATE * 0.05) * 2
        pending = b""
        try:
            while True:
                data = sock.recv(block_bytes)
                if not data:
                    break
                pending += data
                whole = len(pending) - len(pending) % 2
                if whole:
                    samples = np.frombuffer(pending[:whole], dtype="<i2").astype(np.float32) / 32768.0
                    pending = pending[whole:]
                    self._queue.put(samples)
                    self._frames += len(samples)
        except OSError as exc:
            LOG.info("audio link read ended: %s", exc)
        self._failed.set()

    def microphone(self) -> str:
        return self.device.name

    def lost(self) -> str:
        return (f"the connection to the microphone on {self.info.host} closed mid-recording (the SSH "
                "connection dropped, or hearth connect ended); the recording is cancelled")

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)  # the relay stops capturing and closes its side
        except OSError:
            pass
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        sock.close()

"""The laptop side of voice over SSH: serves this machine's microphone and speaker on a Unix
socket (owner-only) that ``hearth connect`` has OpenSSH forward to the remote hearth
(protocol: voice/link.py). It needs PortAudio, not a model.

Run by ``hearth connect`` as its own process (``python -m voice.relay SOCKET``), so PortAudio's
and ALSA's messages go to hearth's log rather than the terminal SSH draws on; it exits when its
stdin closes (``hearth connect`` ended, however it ended).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voice.capture import TARGET_RATE, Recorder, find_device, find_output_device, sounddevice
from voice.errors import VoiceError
from voice.link import LINK_RATE, MAX_LINE, read_line, send_line

LOG = logging.getLogger("hearth.voice.relay")

PLAY_BLOCK_S = 0.05
"""Seconds of audio written to the speaker between checks for a cancelled playback."""
MAX_PLAY_S = 120
"""The longest audio one play request may carry, seconds (one spoken sentence is a few): the
relay holds it in memory before playing."""


def make_recorder(input_device: str, max_seconds: float) -> Recorder:
    """The default recorder factory: the configured microphone (``voice.input_device``).

    Raises:
        VoiceError: PortAudio, no such device.
    """
    return Recorder(find_device(input_device), max_seconds=max_seconds, rates=(TARGET_RATE,))


class Relay:
    """Serves one machine's audio devices to connections on a Unix socket.

    Args:
        input_device, output_device: ``voice.input_device`` / ``voice.output_device`` (name, part
            of a name, or index; empty: the default device).
        recorder_factory: ``(input_device, max_seconds) -> Recorder`` (benchmarks pace a file-backed
            device to real time with it).
    """

    def __init__(self, input_device: str = "", output_device: str = "",
                 recorder_factory: Callable[[str, float], Recorder] = make_recorder) -> None:
        self.input_device = input_device
        self.output_device = output_device
        self.recorder_factory = recorder_factory

    def listen(self, path: Path) -> socket.socket:
        """A socket bound at ``path``, owner-only (mode 0600, made under umask 0177 so it is never
        wider), listening.

        Raises:
            OSError: the path cannot be bound (too long, directory missing, in use).
        """
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            server.bind(str(path))
        finally:
            os.umask(old)
        server.listen(8)
        return server

    def serve(self, server: socket.socket, stop: threading.Event) -> None:
        """Answer connections on ``server``, each on its own thread, until ``stop`` is set."""
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                if stop.is_set():
                    return
                raise
            threading.Thread(target=self.handle, args=(conn,), daemon=True, name="hearth-relay-conn").start()

    def handle(self, conn: socket.socket) -> None:
        """One request (see voice/link.py); every failure is answered or logged, never raised."""
        try:
            with conn:
                request = read_line(conn)
                op = request.get("op")
                if op == "hello":
                    send_line(conn, self.hello())
                elif op == "record":
                    self.record(conn, float(request.get("max_seconds") or 30))
                elif op == "play":
                    self.play(conn, int(request.get("rate") or 0), int(request.get("bytes") or 0))
                else:
                    send_line(conn, {"error": f"unknown request {str(op)[:40]!r}"})
        except (OSError, ConnectionError, ValueError) as exc:
            LOG.info("relay connection ended: %s", exc)
        except Exception:  # noqa: BLE001 - one bad request must not end the relay
            LOG.exception("relay request failed")

    def hello(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"host": socket.gethostname()}
        for key, find, spec in (("input", find_device, self.input_device),
                                ("output", find_output_device, self.output_device)):
            try:
                answer[key] = find(spec).name
            except VoiceError as error:
                answer[key], answer[f"{key}_error"] = None, error.message
        return answer

    def record(self, conn: socket.socket, max_seconds: float) -> None:
        """Capture until the client shuts down its side (or closes), ``max_seconds`` of audio,
        or the device fails; stream it as 16 kHz s16le."""
        try:
            recorder = self.recorder_factory(self.input_device, min(max_seconds, 600.0))
            recorder.start()
        except VoiceError as error:
            send_line(conn, {"error": error.message})
            return
        resample: Any = None
        if recorder.rate != LINK_RATE:
            import soxr

            resample = soxr.ResampleStream(recorder.rate, LINK_RATE, 1, dtype="float32")
        try:
            send_line(conn, {"device": recorder.device.name, "rate": LINK_RATE})
            conn.setblocking(False)
            while True:
                if _closed_by_peer(conn):
                    break
                blocks = recorder.take(timeout=0.02)
                if blocks:
                    audio = np.concatenate(blocks)
                    if resample is not None:
                        audio = resample.resample_chunk(audio)
                    conn.setblocking(True)
                    conn.sendall(np.clip(audio * 32768, -32768, 32767).astype("<i2").tobytes())
                    conn.setblocking(False)
                elif recorder.ended:
                    break
        finally:
            recorder.stop()

    def play(self, conn: socket.socket, rate: int, size: int) -> None:
        """Read ``size`` bytes of s16le mono at ``rate`` Hz, play them on the speaker, answer
        ``done``; a client that closes first stops the playback."""
        if not 1000 <= rate <= 192_000 or not 0 <= size <= MAX_PLAY_S * rate * 2:
            send_line(conn, {"error": f"refused audio of {size} bytes at {rate} Hz"})
            return
        pcm = bytearray()
        while len(pcm) < size:
            data = conn.recv(min(1 << 16, size - len(pcm)))
            if not data:
                return
            pcm += data
        samples = np.frombuffer(bytes(pcm[: len(pcm) - len(pcm) % 2]), dtype="<i2")
        try:
            device = find_output_device(self.output_device)
            self._play(conn, samples, rate, device.index, int(device.default_rate))
        except VoiceError as error:
            send_line(conn, {"error": error.message})
            return
        send_line(conn, {"done": True})

    def _play(self, conn: socket.socket, samples: np.ndarray, rate: int, device: int, default_rate: int) -> None:
        sd = sounddevice()
        try:
            sd.check_output_settings(device=device, channels=1, samplerate=rate, dtype="int16")
        except (sd.PortAudioError, ValueError):  # the speaker does not take this rate: resample
            import soxr

            samples = np.clip(soxr.resample(samples.astype(np.float32), rate, default_rate), -32768, 32767).astype("<i2")
            rate = default_rate
        block = max(1, int(rate * PLAY_BLOCK_S))
        try:
            with sd.OutputStream(device=device, channels=1, samplerate=rate, dtype="int16") as stream:
                for start in range(0, len(samples), block):
                    if _closed_by_peer(conn):
                        stream.abort()
                        return
                    stream.write(samples[start:start + block].reshape(-1, 1))
        except sd.PortAudioError as exc:
            raise VoiceError(f"the speaker failed: {exc}") from None


def _closed_by_peer(conn: socket.socket) -> bool:
    """Whether the client has shut down its side (readable with nothing to read), without
    blocking."""
    if not select.select([conn], [], [], 0)[0]:
        return False
    try:
        return conn.recv(MAX_LINE, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main(argv: list[str] | None = None,
         recorder_factory: Callable[[str, float], Recorder] = make_recorder) -> int:
    """``python -m voice.relay SOCKET [--input-device D] [--output-device D]``: prints ``ready``
    once listening; serves until stdin closes."""
    from engine import paths
    from engine.logs import configure_logging

    parser = argparse.ArgumentParser(prog="python -m voice.relay")
    parser.add_argument("socket", type=Path)
    parser.add_argument("--input-device", default="")
    parser.add_argument("--output-device", default="")
    args = parser.parse_args(argv)
    configure_logging(paths.log_file())
    relay = Relay(args.input_device, args.output_device, recorder_factory)
    try:
        server = relay.listen(args.socket)
    except OSError as exc:
        print(f"error: cannot listen on {args.socket}: {exc}", flush=True)
        return 1
    stop = threading.Event()
    thread = threading.Thread(target=relay.serve, args=(server, stop), daemon=True, name="hearth-relay")
    thread.start()
    print("ready", flush=True)
    LOG.info("relay listening on %s", args.socket)
    sys.stdin.buffer.read()  # returns when hearth connect ends (its end of the pipe closes)
    stop.set()
    server.close()
    args.socket.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

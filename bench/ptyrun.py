"""Run a command in a real pseudo-terminal of a given size, counting what it writes."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path


def hearth_env(home: str) -> dict[str, str]:
    """The environment for a hearth run with its own config, data, state and cache under
    ``home`` (the XDG directories) in a 256-colour terminal."""
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = f"{home}/{name.lower()}"
    return env


def hearth_log(env: dict[str, str]) -> Path:
    """hearth's log file under the environment of :func:`hearth_env`."""
    return Path(env["XDG_STATE_HOME"]) / "hearth" / "log" / "hearth.log"


def wait_ready(tui: PtyProcess, env: dict[str, str], timeout: float = 60.0) -> float:
    """Wait for hearth's first frame with a usable prompt, then for its model to load.

    Returns:
        Seconds from launch to the first frame.
    """
    first_frame = tui.wait_for(b"Enter sends", timeout=timeout)  # the prompt placeholder
    log = hearth_log(env)
    deadline = time.monotonic() + timeout
    while "loaded in" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "model did not load"
        time.sleep(0.05)
    return first_frame


class PtyProcess:
    """A child process on a pty (rows x cols); a thread drains its output.

    Attributes:
        bytes_out: total bytes the child wrote to the terminal.
        started: time.monotonic() when the child was started.
    """

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 80) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.master = master
        self.bytes_out = 0
        self.writes: list[tuple[float, bytes]] = []
        """(time.monotonic(), what was read) for every read from the terminal, from the start."""
        self._tail = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.writes.append((time.monotonic(), chunk))
                self.bytes_out += len(chunk)
                self._tail = (self._tail + chunk)[-200_000:]

    def wait_for(self, needle: bytes, timeout: float = 60.0, since: int = 0) -> float:
        """Seconds since start when ``needle`` first appeared in the output (in what was written
        after the first ``since`` bytes, when given: a :attr:`bytes_out` read before)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if needle in self._tail[max(0, len(self._tail) - (self.bytes_out - since)):]:
                    return time.monotonic() - self.started
            time.sleep(0.005)
        raise TimeoutError(f"{needle!r} did not appear")

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the child so far (from /proc/PID/stat, clock ticks)."""
        with open(f"/proc/{self.proc.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)

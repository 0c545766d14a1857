"""Run a command in a real pseudo-terminal of a given size, counting what it writes."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
import time


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

    def wait_for(self, needle: bytes, timeout: float = 60.0) -> float:
        """Seconds since start when ``needle`` first appeared in the output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if needle in self._tail:
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

    def ui_thread_cpu_seconds(self) -> float:
        """User + system CPU seconds of the child's main thread (Textual's event loop runs there;
        llama.cpp and the reply worker run on other threads), from /proc/PID/task/PID/stat."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/task/{pid}/stat") as handle:
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

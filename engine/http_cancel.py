"""Stop a streaming HTTP response from another thread: Esc on a reply or a download, or a server
that has sent no data for too long (keep-alive comments do not count)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

POLL_S = 0.05
"""How often the watcher looks at the cancel event and the idle clock, seconds."""


class StreamWatch:
    """What :func:`closed_on_cancel` yields: call :meth:`alive` on each data event; ``stalled``
    says the watcher shut the stream down because none came for ``idle_timeout`` seconds."""

    def __init__(self) -> None:
        self.last_data = time.monotonic()
        self.stalled = False

    def alive(self) -> None:
        """A data event arrived (monotonic clock)."""
        self.last_data = time.monotonic()


@contextlib.contextmanager
def closed_on_cancel(cancel: threading.Event, response: httpx.Response,
                     idle_timeout: float | None = None) -> Iterator[StreamWatch]:
    """While the body streams, a watcher shuts the connection down as soon as ``cancel`` is set,
    so Esc ends even a stalled stream at once (not after the read timeout) and the server sees
    the connection close; and, with ``idle_timeout`` (seconds), when no data event has come for
    that long since the last :meth:`StreamWatch.alive` (httpx's read timeout restarts on every
    byte, so a server sending only SSE comments would never time out). The reading thread then
    gets an httpx error (or OSError), which the caller treats as the cancel or the stall. The
    watcher checks every :data:`POLL_S` and ends with the stream."""
    done = threading.Event()
    watch = StreamWatch()

    def shut_down() -> None:
        # Closing a socket does not wake a thread blocked reading it; shutting it down does.
        # httpcore exposes the socket through the response's network stream.
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def run() -> None:
        while not done.is_set():
            if cancel.wait(POLL_S):
                shut_down()
                return
            if idle_timeout is not None and time.monotonic() - watch.last_data > idle_timeout:
                watch.stalled = True
                shut_down()
                return

    watcher = threading.Thread(target=run, daemon=True, name="hearth-cancel-watch")
    watcher.start()
    try:
        yield watch
    finally:
        done.set()

"""Stop a streaming HTTP response from another thread (Esc on a reply or a download)."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Iterator

import httpx


@contextlib.contextmanager
def closed_on_cancel(cancel: threading.Event, response: httpx.Response) -> Iterator[None]:
    """While the body streams, a watcher shuts the connection down as soon as ``cancel`` is set,
    so Esc ends even a stalled stream at once (not after the read timeout) and the server sees
    the connection close. The reading thread then gets an httpx error (or OSError), which the
    caller treats as the cancel. The watcher checks every 50 ms and ends with the stream."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.05):
                # Closing a socket does not wake a thread blocked reading it; shutting it down
                # does. httpcore exposes the socket through the response's network stream.
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    watcher = threading.Thread(target=watch, daemon=True, name="hearth-cancel-watch")
    watcher.start()
    try:
        yield
    finally:
        done.set()

"""A stand-in for the Hugging Face hub on 127.0.0.1, serving real GGUF bytes the way the hub's
``resolve`` URLs do: HEAD gives the size and sha256 (``X-Linked-Size``, ``X-Linked-Etag``), GET
honours ``Range``. It can drop the connection part-way, lie about the sha256 or the size, and
counts the bytes it sends."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class HubServer:
    """Serves ``files`` ({"owner/repo/name.gguf": Path}) under ``/owner/repo/resolve/main/name``.

    Attributes:
        sent: body bytes sent by GET responses so far.
        drop_after: if set, the next GET sends this many bytes then closes the socket (once).
        hold_after: if set, GETs send this many bytes then stall until ``release`` is set.
        fake_sha256 / fake_size: what HEAD reports instead of the truth.
    """

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = {key: (path, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
                      for key, path in files.items()}
        self.sent = 0
        self.gets = 0
        self.drop_after: int | None = None
        self.fake_sha256: str | None = None
        self.fake_size: int | None = None
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _lookup(self):
                parts = self.path.lstrip("/").split("/")
                if len(parts) != 5 or parts[2:4] != ["resolve", "main"]:
                    return None
                return server.files.get(f"{parts[0]}/{parts[1]}/{parts[4]}")

            def _not_found(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Error-Message", "Entry not found")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                entry = self._lookup()
                if entry is None:
                    return self._not_found()
                _, size, sha = entry
                self.send_response(200)
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("X-Linked-Etag", f'"{server.fake_sha256 or sha}"')
                self.send_header("X-Linked-Size", str(server.fake_size or size))
                self.send_header("Content-Length", str(size))
                self.end_headers()

            def do_GET(self) -> None:
                entry = self._lookup()
                if entry is None:
                    return self._not_found()
                path, size, _ = entry
                start = 0
                header = self.headers.get("Range", "")
                if header.startswith("bytes="):
                    start = int(header[6:].split("-")[0])
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(size - start))
                self.end_headers()
                with server.lock:
                    server.gets += 1
                    limit, server.drop_after = server.drop_after, None
                with path.open("rb") as handle:
                    handle.seek(start)
                    budget = size - start if limit is None else min(limit, size - start)
                    held = server.hold_after
                    while budget > 0:
                        if held is not None and handle.tell() - start >= held:
                            server.release.wait(30)  # a stalled link
                            held = None
                        chunk = handle.read(min(65536, budget))
                        try:
                            self.wfile.write(chunk)
                        except OSError:  # the client went away
                            return
                        budget -= len(chunk)
                        with server.lock:
                            server.sent += len(chunk)
                if limit is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # cut off mid-file, as a dropped link would

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

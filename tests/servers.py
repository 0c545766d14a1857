"""Real HTTP servers on 127.0.0.1 for the remote-backend tests: llama-cpp-python's
OpenAI-compatible server on the real GGUF, and a small server that misbehaves on purpose."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` serving the GGUF on a free loopback port."""

    def __init__(self, gguf: Path, log: Path, port: int | None = None, api_key: str | None = None) -> None:
        self.gguf, self.log, self.api_key = gguf, log, api_key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self) -> LlamaServer:
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host",
                "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--model_alias", "smollm2"]
        if self.api_key:
            argv += ["--api_key", self.api_key]
        self.proc = subprocess.Popen(argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("llama_cpp.server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


class Misbehaving(BaseHTTPRequestHandler):
    """Behaviour chosen by the server's ``mode``: models404, auth, stall, drop, broken, error500;
    hostile-reply and hostile-error (the server's ``payload`` as the model id and as the reply,
    or as the error body); endless (tokens until the client leaves, whatever max_tokens says);
    comments (SSE keep-alive comments only, never data)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        self.server.seen_headers.append(dict(self.headers))  # type: ignore[attr-defined]
        if mode == "auth":
            self._send(401, {"error": {"message": "invalid api key"}})
        elif mode.startswith("hostile"):
            self._send(200, {"object": "list", "data": [{"id": self.server.payload}]})  # type: ignore[attr-defined]
        else:
            self._send(200, {"object": "list", "data": [{"id": "m1"}]})

    def do_POST(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        self.server.seen_headers.append(dict(self.headers))  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if mode == "error500":
            self._send(500, {"error": {"message": "model crashed: out of memory"}})
            return
        if mode == "models404":
            self._send(404, {"error": {"message": "model 'm1' not found"}})
            return
        if mode == "hostile-error":
            self._send(500, {"error": {"message": self.server.payload}})  # type: ignore[attr-defined]
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def event(text: str) -> None:
            chunk = {"choices": [{"delta": {"content": text}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        if mode == "comments":
            try:
                while True:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                return
        if mode == "endless":
            try:
                while True:
                    event("tok ")
                    time.sleep(0.001)
            except OSError:
                return
        if mode == "hostile-reply":
            event(self.server.payload)  # type: ignore[attr-defined]
        else:
            event("Hello")
            event(" there")
        if mode == "stall":
            time.sleep(5)
        elif mode == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif mode == "broken":
            self.wfile.write(b"data: {\"choices\": [ this is not json\n\n")
            self.wfile.flush()
            time.sleep(0.5)
        else:  # a well-behaved end
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        self.close_connection = True  # the body ends when the connection does


class MisbehavingServer:
    """``tls_dir``: serve HTTPS with a self-signed certificate made there by openssl."""

    def __init__(self, mode: str, tls_dir: Path | None = None, payload: str = "") -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls_dir is not None:
            import ssl

            key, cert = tls_dir / "key.pem", tls_dir / "cert.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                           check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.httpd.mode = mode  # type: ignore[attr-defined]
        self.httpd.seen_headers = []  # type: ignore[attr-defined]
        self.httpd.payload = payload  # type: ignore[attr-defined]
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def seen_headers(self) -> list[dict]:
        return self.httpd.seen_headers  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

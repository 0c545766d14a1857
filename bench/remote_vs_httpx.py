"""hearth's remote backend against a plain httpx client, reading the same server's stream.

A real OpenAI-compatible server (llama-cpp-python's, on the real SmolLM2 GGUF) runs on
127.0.0.1; the same prompt is streamed through ``engine.chat.remote.RemoteBackend`` and
through a minimal httpx loop (``iter_lines`` + ``json.loads``), alternating, and medians of tokens/s
and time to first token are printed. Target: hearth >= 0.97 of the plain client's tokens/s.

Run: .venv/bin/python -m bench.remote_vs_httpx [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from engine.chat.backend import GenerationParams
from engine.chat.remote import RemoteBackend
from engine.config import EndpointSettings
from engine.models.starter import ensure_starter_model
from tests.servers import LlamaServer

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
MAX_TOKENS = 400


def rate(stamps: list[float], start: float) -> dict:
    return {"chunks": len(stamps), "ttft_s": stamps[0] - start,
            "tokens_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0])}


def plain_httpx(url: str) -> dict:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "temperature": 0.0, "max_tokens": MAX_TOKENS}
    stamps = []
    start = time.perf_counter()
    with httpx.Client(timeout=60) as client, client.stream("POST", f"{url}/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line[6:].strip() != "[DONE]":
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    stamps.append(time.perf_counter())
    return rate(stamps, start)


def hearth_remote(url: str) -> dict:
    backend = RemoteBackend("bench", EndpointSettings(url=url, model="smollm2"))
    backend.load()
    stamps = []
    start = time.perf_counter()
    params = GenerationParams(temperature=0.0, max_tokens=MAX_TOKENS)
    for event in backend.stream([{"role": "user", "content": PROMPT}], params, threading.Event()):
        if event.text:
            stamps.append(time.perf_counter())
    backend.close()
    return rate(stamps, start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    with tempfile.TemporaryDirectory() as tmp:
        server = LlamaServer(model, Path(tmp) / "server.log").start()
        try:
            plain_httpx(server.url)  # warm-up
            plain, ours = [], []
            for repeat in range(args.repeats):
                plain.append(plain_httpx(server.url))
                ours.append(hearth_remote(server.url))
                print(f"run {repeat + 1}: plain httpx {plain[-1]['tokens_per_s']:.1f} tokens/s, "
                      f"hearth {ours[-1]['tokens_per_s']:.1f} tokens/s")
        finally:
            server.kill()
    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    print(f"\nserver: llama_cpp.server on 127.0.0.1, {model.name}, temperature 0, max {MAX_TOKENS} tokens")
    print(f"{'figure (median of ' + str(args.repeats) + ')':34} {'plain httpx':>12} {'hearth remote':>14}")
    print(f"{'chunks streamed':34} {med(plain, 'chunks'):>12.0f} {med(ours, 'chunks'):>14.0f}")
    print(f"{'time to first token (s)':34} {med(plain, 'ttft_s'):>12.3f} {med(ours, 'ttft_s'):>14.3f}")
    print(f"{'tokens/s':34} {med(plain, 'tokens_per_s'):>12.1f} {med(ours, 'tokens_per_s'):>14.1f}")
    ratio = med(ours, "tokens_per_s") / med(plain, "tokens_per_s")
    print(f"\nhearth / plain httpx tokens/s: {ratio:.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()

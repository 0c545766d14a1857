"""How fast a model will generate on this machine, before it is downloaded.

Token generation reads every weight the model uses once per token, so on a CPU its time per
token is about ``fixed_s + bytes_per_token / bandwidth`` (the memory-bound model of llama.cpp's
token generation; llama.cpp discussion #4167 "Performance of llama.cpp on Apple Silicon" and the
Pi figures in its README show tokens/s falling with model bytes at about the memory bandwidth):

- ``bandwidth``: bytes/s this machine's cores stream from RAM, measured with numpy (a sum over
  a 64 MiB array per thread, ``threads`` threads, which release the GIL);
- ``fixed_s``: the rest of a token's time (per-layer dispatch and thread sync, the sampler over
  the vocabulary, Python), taken from a real run of the starter model: its measured time per token
  minus its bytes / bandwidth.

Measured once (a few seconds) and kept in :func:`speed_path`; ``hearth models bench`` measures
again. Checked against measured tokens/s of every model and quantization available on the
development machine (bench/speed_prediction.py; README has the table).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.models.gguf import GGUFMeta

MIB = 2**20
STREAM_BYTES = 64 * MIB
"""Bytes each thread sums in the bandwidth measurement (far larger than any CPU cache)."""
TOKENS = 32
"""Tokens generated per timing run of the starter model."""


@dataclass(frozen=True)
class MachineSpeed:
    """What this machine delivers to llama.cpp's token generation.

    Attributes:
        bandwidth: bytes/s read from RAM with ``threads`` threads.
        fixed_s: seconds per token beyond reading the weights.
        threads: the thread count both were measured with.
    """

    bandwidth: float
    fixed_s: float
    threads: int

    def tokens_per_s(self, bytes_per_token: int) -> float:
        """Predicted token generation, tokens/s, for a model reading ``bytes_per_token``."""
        return 1.0 / (self.fixed_s + bytes_per_token / self.bandwidth)


def bytes_per_token(meta: GGUFMeta) -> int:
    """Weight bytes read per generated token: every tensor, except the token embedding when the
    model has its own output matrix (the embedding is then read one row per token, GET_ROWS;
    when tied, as in most small models, it is the output matrix and read whole)."""
    names = {name for name, _, _ in meta.tensors}
    embedding = sum(size for name, _, size in meta.tensors if name == "token_embd.weight")
    return meta.tensor_bytes - (embedding if "output.weight" in names else 0)


def measure_bandwidth(threads: int) -> float:
    """Bytes/s ``threads`` threads stream from RAM (best of ten sums of 64 MiB each, after one
    that warms up: a shared machine's speed wanders, the best run is what the hardware gives)."""
    import numpy as np

    arrays = [np.ones(STREAM_BYTES // 8) for _ in range(threads)]
    best = 0.0
    for _ in range(11):
        workers = [threading.Thread(target=array.sum) for array in arrays]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, threads * STREAM_BYTES / (time.perf_counter() - started))
    return best


def measure(model: Path, meta: GGUFMeta, threads: int) -> MachineSpeed:
    """Measure this machine with the GGUF ``model`` (the starter model: small, always at hand):
    the bandwidth, then ``model``'s best time per token over three runs of :data:`TOKENS` tokens.

    Raises:
        RuntimeError, ValueError: llama.cpp could not load or run ``model``.
    """
    bandwidth = measure_bandwidth(threads)
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=256, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    try:
        prompt = llm.tokenize(b"The lighthouse keeper wrote in his log that")
        best = float("inf")
        for _ in range(3):
            count, first = 0, 0.0
            for _token in llm.generate(prompt, temp=0.0, reset=True):
                count += 1
                if count == 1:
                    first = time.perf_counter()
                if count > TOKENS:
                    break
            best = min(best, (time.perf_counter() - first) / TOKENS)
    finally:
        llm.close()
    fixed = max(best - bytes_per_token(meta) / bandwidth, 0.0)
    return MachineSpeed(bandwidth=bandwidth, fixed_s=fixed, threads=threads)


def load(path: Path) -> MachineSpeed | None:
    """The kept measurement, or ``None`` (never measured, or an unreadable file)."""
    try:
        return MachineSpeed(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save(speed: MachineSpeed, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(speed)))

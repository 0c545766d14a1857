"""How much RAM a GGUF needs at a context size, and how much this machine can give.

The estimate is of the resident set (RSS) of a process that has loaded the model with llama.cpp
(llama-cpp-python, mmap on, flash attention off, f16 KV cache, n_ubatch 512) and filled the
context. Parts, in bytes:

- ``weights``: the tensors' bytes in the file (mapped, all touched while running), plus a second
  copy of every tensor llama.cpp repacks into an interleaved layout for its CPU kernels (the
  repacked copy is anonymous memory; the mapped original stays resident after being read, but as
  clean page cache the kernel can drop: ``reclaimable``, left out of what must fit).
  Repacked types: ``ggml_repack_get_optimal_repack_type`` in ggml-cpu/repack.cpp; measured here on
  x86-64 AVX2: Q4_0 repacked, Q4_1/Q8_0/Q3_K not. token_embd is read by GET_ROWS and never repacked.
- ``kv_cache``: n_layer x n_ctx_padded x (n_embd_k_gqa + n_embd_v_gqa) x 2 bytes (f16 K and V),
  n_ctx padded up to a multiple of 256 as llama.cpp pads it (llama_kv_cache, "cells").
- ``compute``: what llama.cpp's compute buffer and the CPU work buffer actually touch:
  attention scratch with flash attention off, n_ctx_padded x n_ubatch x (n_head x (4 + 2) + 4)
  (KQ in f32, its f16 copy for KQ·V in the work buffer, the f32 KQ mask); FFN intermediates,
  4 bytes x n_ubatch x 4 x n_ff; and one row of logits, 4 x n_vocab. llama.cpp *reserves*
  4 x n_vocab x n_ubatch for logits (the "compute buffer size" it logs), but in chat it computes
  one row per decode, so the rest of that reservation is never touched and costs no RAM.
  With sliding-window attention (``{arch}.attention.sliding_window``: Gemma 2 and 3, Cohere 2)
  llama.cpp builds a second f32 KQ mask for the sliding-window layers, n_ctx_padded x n_ubatch x
  4 more (llm_graph_input_attn_kv_iswa). Their KV cache is full size: llama-cpp-python creates
  contexts with ``swa_full`` on (llama_context_default_params).
- ``overhead``: the process (Python, llama-cpp-python, numpy: 47 MiB measured) and the tokenizer
  tables, from the header's own vocabulary: 176 bytes per token and 209 per BPE merge
  (:data:`TOKENIZER_BYTES_PER_TOKEN`).

Measured against peak RSS (``bench/rss_probe.py``) at n_ctx 1024, 4096 and 8192 on SmolLM2-135M
(llama architecture, BPE vocabulary) Q8_0, Q4_1, Q4_0, Q2_K and Gemma 3 270M (gemma3: sliding-window
attention, a 262,144-token SentencePiece vocabulary) Q8_0, Q4_K_M, Q4_0, Q2_K: within 2%
(``bench/estimate_accuracy.py``; README has the table).
hearth's own UI adds ~25 MiB on top (bench/cheap_to_watch.py), covered by the budget's margin
(:mod:`engine.models.budget`).

Pure arithmetic: nothing here reads a file or the machine; :mod:`engine.models.fit` applies it to
a GGUF's header.
"""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass
from typing import Any

MIB = 2**20
KV_PAD = 256
"""llama.cpp pads the KV cache to a multiple of 256 cells (measured: n_ctx 1000 -> 1024 cells)."""
N_UBATCH = 512
"""llama.cpp's default physical batch (n_ubatch); hearth does not change it."""
PROCESS_BASE = 47 * MIB
"""RSS of Python 3.11 with llama_cpp (and numpy) imported, before a model: measured 46.9-47.0 MiB
(2026-11-22, llama-cpp-python 0.3.36; 40 MiB in earlier measurements on the same versions)."""
TOKENIZER_BYTES_PER_TOKEN = 176
"""llama.cpp's tokenizer tables per vocabulary entry (the token's text, score and attributes, the
text -> id hash map, the token -> piece cache). Fitted with :data:`TOKENIZER_BYTES_PER_MERGE` on
two vocab_only loads (RSS after minus before, bench/estimate_accuracy.py): Gemma 3's 262,144
tokens with no merges add 43.9 MiB; SmolLM2's 49,152 tokens and 48,900 merges add 18.0 MiB."""
TOKENIZER_BYTES_PER_MERGE = 209
"""Per BPE merge rule (``tokenizer.ggml.merges``: llama.cpp keeps them in a map of string pairs)."""

REPACKED_TYPES = {
    "x86_64": {"Q4_0", "Q4_K", "Q2_K", "IQ4_NL"},
    "aarch64": {"Q4_0", "Q4_K", "IQ4_NL", "Q8_0"},
}
"""Tensor types llama.cpp's CPU backend repacks, per machine (ggml-cpu/repack.cpp)."""


@dataclass(frozen=True)
class Architecture:
    """The numbers the estimate needs, from GGUF metadata (``{arch}.block_count`` ...) or the catalog."""

    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    n_merges: int = 0
    """BPE merge rules in the tokenizer (0 for SentencePiece vocabularies)."""
    n_swa: int = 0
    """Sliding-window size in tokens (0: no sliding-window attention)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of RAM, by part; ``approximate`` when some metadata (or the file size) was missing
    and defaults were used.

    ``total`` is the expected resident set (what ``ps`` shows). ``reclaimable`` is the part of
    ``weights`` that is mapped file pages of repacked tensors: resident, but clean page cache the
    kernel drops under memory pressure, so ``needed`` (``total - reclaimable``) is what must fit.
    """

    weights: int
    kv_cache: int
    compute: int
    overhead: int
    n_ctx: int
    approximate: bool = False
    reclaimable: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.overhead

    @property
    def needed(self) -> int:
        return self.total - self.reclaimable

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "needed": self.needed}


def padded_ctx(n_ctx: int) -> int:
    """KV cells llama.cpp allocates for ``n_ctx`` tokens."""
    return math.ceil(n_ctx / KV_PAD) * KV_PAD


def estimate(
    arch: Architecture, n_ctx: int, tensor_bytes: int, repacked_bytes: int = 0, approximate: bool = False
) -> MemoryEstimate:
    """The RAM estimate (see the module docstring for each part and its source).

    Args:
        arch: model dimensions.
        n_ctx: context window, tokens.
        tensor_bytes: bytes of all tensors in the GGUF.
        repacked_bytes: bytes of the tensors llama.cpp repacks on this machine (counted twice).
    """
    cells = padded_ctx(n_ctx)
    kv = arch.n_layer * cells * (arch.n_head_kv * (arch.head_dim_k + arch.head_dim_v)) * 2
    masks = 2 if arch.n_swa else 1
    scratch = cells * N_UBATCH * (arch.n_head * (4 + 2) + 4 * masks)
    ffn = 4 * N_UBATCH * 4 * arch.n_ff
    compute = scratch + ffn + 4 * arch.n_vocab
    overhead = (PROCESS_BASE + TOKENIZER_BYTES_PER_TOKEN * arch.n_vocab
                + TOKENIZER_BYTES_PER_MERGE * arch.n_merges)
    return MemoryEstimate(tensor_bytes + repacked_bytes, kv, compute, overhead, n_ctx, approximate,
                          reclaimable=repacked_bytes)


def repacked_types(machine: str | None = None) -> set[str]:
    """Tensor types repacked on ``machine`` (``platform.machine()`` by default)."""
    machine = machine or platform.machine()
    return REPACKED_TYPES.get({"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine), set())


def mib(n: int) -> str:
    """``n`` bytes as ``123.4 MiB``."""
    return f"{n / MIB:.1f} MiB"

"""A GGUF's header: the cheap magic-bytes check made before llama.cpp touches a file, and the
header read with llama.cpp's own ``gguf`` package (memory-mapped; weights untouched): architecture
numbers for the memory estimate, tensor types and sizes, quantization, name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ModelLoadError
from engine.models.estimate import Architecture

GGUF_MAGIC = b"GGUF"
"""First four bytes of every GGUF file (ggml/docs/gguf.md)."""


def check_gguf_file(path: Path) -> None:
    """Fail early, with a clear message, on a path that cannot be a GGUF model.

    Raises:
        ModelLoadError: the path does not exist, is not a regular file, cannot be read, or does
            not start with the GGUF magic bytes.
    """
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{path} is not a GGUF model (it does not start with 'GGUF')")


def file_type_name(file_type: object) -> str:
    """``Q4_K_M``-style name of a ``general.file_type`` value (an int, or its text as
    llama-cpp-python's metadata dict holds it), from ``gguf.LlamaFileType`` (llama.cpp's
    ``enum llama_ftype``); "" when missing or unknown."""
    import gguf  # llama.cpp's gguf package: numpy-heavy, only needed once a model is looked at

    try:
        return gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_").removeprefix("ALL_")  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return ""


@dataclass(frozen=True)
class GGUFMeta:
    """What the header says.

    Attributes:
        tensors: (name, type name such as ``Q4_K``, bytes) per tensor.
        tensor_bytes: bytes of all tensor data.
        n_params: parameters (elements of all tensors).
        approximate: some key the estimate needs was missing; a default was used (``missing``).
    """

    path: Path
    name: str
    architecture: str
    quantization: str
    arch: Architecture
    tensors: list[tuple[str, str, int]]
    tensor_bytes: int
    n_params: int
    missing: tuple[str, ...]

    @property
    def approximate(self) -> bool:
        return bool(self.missing)


def read_gguf(path: Path) -> GGUFMeta:
    """Read the header of the GGUF at ``path``.

    Raises:
        ModelLoadError: missing file, not GGUF, or a header the ``gguf`` package cannot parse
            (truncated or corrupt).
    """
    path = Path(path)
    check_gguf_file(path)
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise ModelLoadError(
            f"{path.name} is corrupted or incomplete: its GGUF header or tensor table cannot be read ({exc})"
        ) from None
    fields = reader.fields

    def value(key: str) -> Any:
        field = fields.get(key)
        if field is None:
            return None
        try:
            return field.contents()
        except (ValueError, IndexError):
            return None

    arch_name = str(value("general.architecture") or "")
    missing: list[str] = []

    def number(key: str, default: int) -> int:
        raw = value(f"{arch_name}.{key}")
        if isinstance(raw, list):  # per-layer values (some architectures): the largest
            raw = max(raw) if raw else None
        if raw is None:
            missing.append(f"{arch_name}.{key}")
            return default
        return int(raw)

    n_embd = number("embedding_length", 2048)
    n_head = number("attention.head_count", 32)
    n_head_kv = int(value(f"{arch_name}.attention.head_count_kv") or n_head)
    head_dim = n_embd // max(n_head, 1)
    tokens = fields.get("tokenizer.ggml.tokens")
    n_vocab_default = len(tokens.data) if tokens is not None else 0
    vocab = value(f"{arch_name}.vocab_size")
    n_vocab = int(vocab) if vocab is not None else n_vocab_default
    if not n_vocab:
        missing.append("tokenizer.ggml.tokens")
        n_vocab = 32000
    arch = Architecture(
        n_layer=number("block_count", 32),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=int(value(f"{arch_name}.attention.key_length") or head_dim),
        head_dim_v=int(value(f"{arch_name}.attention.value_length") or head_dim),
        n_ff=number("feed_forward_length", 4 * n_embd),
        n_vocab=n_vocab,
        n_ctx_train=number("context_length", 4096),
    )
    tensors = [(t.name, t.tensor_type.name, int(t.n_bytes)) for t in reader.tensors]
    file_type = value("general.file_type")
    return GGUFMeta(
        path=path,
        name=str(value("general.name") or path.stem),
        architecture=arch_name,
        quantization=file_type_name(file_type),
        arch=arch,
        tensors=tensors,
        tensor_bytes=sum(size for _, _, size in tensors),
        n_params=sum(int(t.n_elements) for t in reader.tensors),
        missing=tuple(missing),
    )

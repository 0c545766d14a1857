"""A GGUF's header: the cheap magic-bytes check made before llama.cpp touches a file, and the
header itself (memory-mapped; weights untouched): architecture numbers for the memory estimate,
tensor types and sizes, quantization, name.

The header is walked here rather than with ``gguf.GGUFReader``: the reader builds numpy views of
every string of the vocabulary (49,152 for SmolLM2, 262,144 for Gemma 3), which took 4.6 s for
the 135M starter model on this machine — paid before every model load (the fit check) and for
every file on the model screen, and 3-5 times longer on a Pi. Arrays of strings are skipped here
(their length is kept: the vocabulary size), so the same header reads in about 0.03 s. The format
is ggml/docs/gguf.md (versions 2 and 3, little-endian); the tables of value types, tensor types
and their block sizes are the ``gguf`` package's own (``GGUFValueType``, ``GGMLQuantizationType``,
``GGML_QUANT_SIZES``), and ``tests/test_memory.py`` checks this reader against ``GGUFReader``.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from functools import cache
from math import prod
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
    import gguf  # llama.cpp's own tables; numpy-heavy, so loaded when a model is looked at

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


SMALL_ARRAY = 4096
"""Numeric arrays up to this many elements are read (per-layer values of some architectures);
longer ones, and every array of strings (the vocabulary), are skipped: only their length is kept."""


@cache
def _formats() -> dict[int, str]:
    """struct formats of the scalar value types, keyed by ``gguf.GGUFValueType``."""
    import gguf  # llama.cpp's own tables; numpy-heavy, so loaded when a model is looked at

    v = gguf.GGUFValueType
    return {v.UINT8: "<B", v.INT8: "<b", v.UINT16: "<H", v.INT16: "<h", v.UINT32: "<I", v.INT32: "<i",
            v.FLOAT32: "<f", v.BOOL: "<?", v.UINT64: "<Q", v.INT64: "<q", v.FLOAT64: "<d"}



@dataclass(frozen=True)
class Skipped:
    """An array that was not read into memory: its element count."""

    count: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the table: its name, type name (``Q4_K``), elements and bytes of data."""

    name: str
    type_name: str
    n_elements: int
    n_bytes: int


class _Header:
    """A cursor over the mapped header bytes."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = self.take("<Q")
        text = self.data[self.at:self.at + size].decode("utf-8", errors="replace")
        self.at += size
        return text

    def value(self, kind: int) -> Any:
        import gguf  # loaded by _formats() already

        formats = _formats()
        if kind in formats:
            return self.take(formats[kind])
        if kind == gguf.GGUFValueType.STRING:
            return self.string()
        if kind != gguf.GGUFValueType.ARRAY:
            raise ValueError(f"unknown value type {kind}")
        item, count = self.take("<I"), self.take("<Q")
        if item == gguf.GGUFValueType.STRING:
            for _ in range(count):
                self.at += 8 + struct.unpack_from("<Q", self.data, self.at)[0]
            return Skipped(count)
        if item not in formats:
            raise ValueError(f"an array of value type {item}")
        fmt = formats[item]
        size = struct.calcsize(fmt)
        values = Skipped(count) if count > SMALL_ARRAY else list(struct.unpack_from(f"<{count}{fmt[1]}", self.data, self.at))
        self.at += count * size
        return values


class HeaderCutShort(ValueError):
    """The bytes given end before the GGUF header does."""


def parse_header(data: Any) -> tuple[dict[str, Any], list[TensorInfo], int]:
    """The metadata (key -> value; long arrays as :class:`Skipped`), the tensor table, and the
    header's length in bytes, from the first bytes of a GGUF (``bytes`` or a memory map).

    Raises:
        HeaderCutShort: ``data`` ends inside the header (read more of the file).
        ValueError: not a GGUF this reader knows (version 2 or 3, little-endian).
    """
    import gguf  # llama.cpp's own tables; numpy-heavy, so loaded when a model is looked at

    _formats()
    header = _Header(data)
    try:
        if data[:4] != GGUF_MAGIC:
            raise ValueError("no GGUF magic")
        header.at = 4
        version = header.take("<I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} (or a big-endian file)")
        n_tensors, n_kv = header.take("<Q"), header.take("<Q")
        fields: dict[str, Any] = {}
        for _ in range(n_kv):
            key = header.string()
            fields[key] = header.value(header.take("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = header.string()
            dims = [header.take("<Q") for _ in range(header.take("<I"))]
            kind = gguf.GGMLQuantizationType(header.take("<I"))
            header.take("<Q")  # where its data starts
            block, type_size = gguf.GGML_QUANT_SIZES[kind]
            n_elements = prod(dims)
            tensors.append(TensorInfo(name, kind.name, n_elements, n_elements // block * type_size))
    except struct.error:
        raise HeaderCutShort(f"the header goes on past byte {len(data)}") from None
    if header.at > len(data):  # a string ran past the end
        raise HeaderCutShort(f"the header goes on past byte {len(data)}")
    return fields, tensors, header.at


def read_header(path: Path) -> tuple[dict[str, Any], list[TensorInfo]]:
    """The metadata and tensor table of the GGUF at ``path`` (:func:`parse_header`). Only the
    header is read (the file is memory-mapped).

    Raises:
        ValueError, OSError: not a GGUF this reader knows, or a header cut short.
    """
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        fields, tensors, _ = parse_header(data)
    return fields, tensors


def _count(array: Any) -> int:
    """Elements of a header array, read or skipped (0 when absent)."""
    return array.count if isinstance(array, Skipped) else len(array or [])


def read_gguf(path: Path) -> GGUFMeta:
    """Read the header of the GGUF at ``path``.

    Raises:
        ModelLoadError: missing file, not GGUF, or a header that cannot be parsed (truncated or
            corrupt).
    """
    path = Path(path)
    check_gguf_file(path)
    try:
        fields, table = read_header(path)
    except (ValueError, KeyError, OSError, struct.error, OverflowError, MemoryError) as exc:
        raise ModelLoadError(
            f"{path.name} is corrupted or incomplete: its GGUF header or tensor table cannot be read ({exc})"
        ) from None
    return meta_from_header(fields, table, path)


def meta_from_header(fields: dict[str, Any], table: list[TensorInfo], path: Path) -> GGUFMeta:
    """What a parsed header says (:func:`parse_header`); ``path`` names the file (local, or the
    file name of one on the hub)."""

    def value(key: str) -> Any:
        return fields.get(key)

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
    n_vocab_default = _count(fields.get("tokenizer.ggml.tokens"))
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
        n_merges=_count(fields.get("tokenizer.ggml.merges")),
        n_swa=int(value(f"{arch_name}.attention.sliding_window") or 0),
    )
    tensors = [(t.name, t.type_name, t.n_bytes) for t in table]
    file_type = value("general.file_type")
    return GGUFMeta(
        path=path,
        name=str(value("general.name") or path.stem),
        architecture=arch_name,
        quantization=file_type_name(file_type),
        arch=arch,
        tensors=tensors,
        tensor_bytes=sum(size for _, _, size in tensors),
        n_params=sum(t.n_elements for t in table),
        missing=tuple(missing),
    )

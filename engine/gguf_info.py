"""Cheap facts about a GGUF file, read before llama.cpp touches it."""

from __future__ import annotations

from pathlib import Path

from engine.errors import ModelLoadError

GGUF_MAGIC = b"GGUF"
"""First four bytes of every GGUF file (ggml/docs/gguf.md)."""

# enum llama_ftype in llama.h: the value of the GGUF key general.file_type.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}


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


def quantization_name(metadata: dict[str, str]) -> str:
    """``Q4_K_M``-style name from the ``general.file_type`` metadata value; "" when unknown."""
    raw = metadata.get("general.file_type", "")
    try:
        return FILE_TYPES.get(int(raw), "")
    except ValueError:
        return ""

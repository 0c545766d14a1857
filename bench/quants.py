"""Quantizations of the starter GGUF made with llama.cpp's own quantizer (``llama_model_quantize``
with ``allow_requantize``: the starter is already Q4_1), cached beside it. For the estimate
accuracy benchmark and tests: real files of different sizes and tensor types."""

from __future__ import annotations

from pathlib import Path

FTYPES = {"Q8_0": 7, "Q4_0": 2, "Q2_K": 10}
"""llama.h enum llama_ftype values."""


def quantized(source: Path, quant: str) -> Path:
    """``source`` re-quantized to ``quant`` (made once, then reused)."""
    target = source.with_name(f"{source.stem.split('.')[0]}.{quant}.gguf")
    if target.exists():
        return target
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quant]
    params.allow_requantize = True
    params.nthread = 2
    partial = target.with_suffix(".partial")
    if llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {source} to {quant}")
    partial.rename(target)
    return target

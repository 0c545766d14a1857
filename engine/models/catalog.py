"""The curated model catalog (``engine/catalog.toml``, data not code) and estimates for its
entries before anything is downloaded."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from engine.errors import ConfigError
from engine.models.estimate import Architecture, MemoryEstimate, estimate, repacked_types

QUANT_ORDER = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0", "IQ4_XS",
               "Q3_K_M", "Q3_K_S", "Q2_K"]
"""Quantizations from best to worst (larger files keep more of the model's quality)."""

BITS_PER_WEIGHT = {
    "Q8_0": 8.50, "Q6_K": 6.57, "Q5_K_M": 5.70, "Q5_K_S": 5.57, "Q4_K_M": 4.89, "Q4_K_S": 4.67,
    "Q4_0": 4.66, "IQ4_XS": 4.43, "Q3_K_M": 4.00, "Q3_K_S": 3.65, "Q2_K": 3.17,
}
"""Bits per weight of whole files (bytes x 8 / parameters) of Llama-3.1-8B-Instruct GGUFs as
published in bartowski's repository (mixed-type files: embeddings and output keep more bits).
Used only offline, when the hub's file size is unknown; such estimates are marked approximate."""

REPACK_SHARE = {"Q4_0": 0.95, "Q4_K_S": 0.90, "Q4_K_M": 0.70, "Q2_K": 0.40, "Q8_0": 0.95}
"""Approximate share of a file's bytes in tensors of the quantization's main type (the rest:
embeddings, output and a few layers kept at higher precision), used with
:func:`engine.models.estimate.repacked_types` to count repacked copies for catalog entries."""

MAIN_TYPE = {"Q8_0": "Q8_0", "Q6_K": "Q6_K", "Q5_K_M": "Q5_K", "Q5_K_S": "Q5_K", "Q4_K_M": "Q4_K",
             "Q4_K_S": "Q4_K", "Q4_0": "Q4_0", "IQ4_XS": "IQ4_XS", "Q3_K_M": "Q3_K", "Q3_K_S": "Q3_K",
             "Q2_K": "Q2_K"}
"""The tensor type most of a file of each quantization is in (llama.cpp's llama_ftype mixes)."""


@dataclass(frozen=True)
class CatalogModel:
    """One ``[[model]]`` of the catalog."""

    family: str
    repo: str
    file: str
    params: int
    arch: Architecture
    quants: tuple[str, ...]

    def file_name(self, quant: str) -> str:
        return self.file.format(quant=quant)

    def approx_size(self, quant: str) -> int:
        """File bytes estimated from the parameter count and :data:`BITS_PER_WEIGHT`."""
        return int(self.params * BITS_PER_WEIGHT[quant] / 8)

    def estimate(self, quant: str, n_ctx: int, size: int | None = None, machine: str | None = None) -> MemoryEstimate:
        """RAM needed at ``n_ctx`` for ``quant``; ``size``: the real file size in bytes if known
        (else approximated, and the estimate is marked approximate)."""
        approximate = size is None
        size = size if size is not None else self.approx_size(quant)
        repacked = int(size * REPACK_SHARE.get(quant, 0.0)) if MAIN_TYPE[quant] in repacked_types(machine) else 0
        return estimate(self.arch, n_ctx, size, repacked, approximate)


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CatalogModel, ...]:
    """The catalog shipped with hearth, smallest model first."""
    text = resources.files("engine.models").joinpath("catalog.toml").read_text(encoding="utf-8")
    models = []
    for entry in tomllib.loads(text)["model"]:
        arch = Architecture(
            n_layer=entry["n_layer"], n_embd=entry["n_embd"], n_head=entry["n_head"],
            n_head_kv=entry["n_head_kv"], head_dim_k=entry["head_dim"], head_dim_v=entry["head_dim"],
            n_ff=entry["n_ff"], n_vocab=entry["n_vocab"], n_ctx_train=entry["n_ctx_train"],
            n_merges=entry.get("n_merges", 0), n_swa=entry.get("n_swa", 0),
        )
        quants = tuple(q for q in QUANT_ORDER if q in entry["quants"])
        models.append(CatalogModel(entry["family"], entry["repo"], entry["file"], entry["params"], arch, quants))
    return tuple(sorted(models, key=lambda m: m.params))


def find_model(name: str) -> CatalogModel:
    """The catalog entry named ``name`` (case-insensitive).

    Raises:
        ConfigError: no such family; the message names the nearest ones.
    """
    catalog = load_catalog()
    by_name = {m.family.lower(): m for m in catalog}
    if name.lower() in by_name:
        return by_name[name.lower()]
    near = difflib.get_close_matches(name.lower(), list(by_name), n=3, cutoff=0.4)
    hint = f" (did you mean {', '.join(by_name[n].family for n in near)}?)" if near else ""
    raise ConfigError(f"no model family {name!r} in the catalog{hint}; hearth models recommend lists them")


def parse_quant(name: str) -> str:
    """``q4_k_m`` -> ``Q4_K_M``.

    Raises:
        ConfigError: not one of :data:`QUANT_ORDER`.
    """
    quant = name.upper()
    if quant not in QUANT_ORDER:
        near = difflib.get_close_matches(quant, QUANT_ORDER, n=1, cutoff=0.5)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(f"unknown quantization {name!r}{hint}; known: {', '.join(QUANT_ORDER)}")
    return quant

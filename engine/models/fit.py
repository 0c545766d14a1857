"""Does a GGUF fit this machine? Its header's numbers through the estimate
(:mod:`engine.models.estimate`), against the budget (:mod:`engine.models.budget`); a model that
does not fit is refused before loading, with the figures and a context size or catalog model that
would fit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from engine.errors import ModelLoadError
from engine.models.budget import MemoryBudget, memory_budget
from engine.models.estimate import MemoryEstimate, estimate, mib, repacked_types
from engine.models.gguf import GGUFMeta, read_gguf
from engine.models.picker import recommend

LOG = logging.getLogger("hearth.models")

Estimator = Callable[[int], MemoryEstimate]
"""``n_ctx`` (tokens) -> the estimate at that context size."""


def file_estimator(path: Path) -> Estimator:
    """``n_ctx -> MemoryEstimate`` for a local GGUF, from its header (read once; weights are not
    loaded).

    Raises:
        ModelLoadError: not a readable GGUF.
    """
    return meta_estimator(read_gguf(path))


def meta_estimator(meta: GGUFMeta) -> Estimator:
    """``n_ctx -> MemoryEstimate`` for a GGUF header already read (``engine.models.gguf.GGUFMeta``)."""
    repack = repacked_types()
    repacked = sum(size for name, kind, size in meta.tensors if kind in repack and name != "token_embd.weight")
    return lambda n_ctx: estimate(meta.arch, n_ctx, meta.tensor_bytes, repacked, meta.approximate)


def estimate_file(path: Path, n_ctx: int) -> MemoryEstimate:
    """The estimate for a local GGUF at ``n_ctx`` tokens (see :func:`file_estimator`).

    Raises:
        ModelLoadError: not a readable GGUF.
    """
    return file_estimator(path)(n_ctx)


def largest_fitting_ctx(fits: Callable[[int], bool], n_ctx: int, floor: int = 2048) -> int | None:
    """The largest context, halving from ``n_ctx`` down to ``floor``, for which ``fits(n)``; else None."""
    n = n_ctx
    while n >= floor:
        if fits(n):
            return n
        n //= 2
    return None


def check_fits(path: Path, n_ctx: int, budget: MemoryBudget | None = None) -> MemoryEstimate:
    """Refuse, before loading, a model whose estimate is over the budget.

    Raises:
        ModelLoadError: the model does not fit; the message gives the estimate, the budget and
            a smaller context that would fit, if any.
    """
    budget = budget or memory_budget()
    at = file_estimator(path)
    result = at(n_ctx)
    if result.needed <= budget.usable:
        LOG.info("memory estimate %s at n_ctx %d: fits %s (%s)", mib(result.total), n_ctx, mib(budget.usable), budget.source)
        return result
    smaller = largest_fitting_ctx(lambda n: at(n).needed <= budget.usable, n_ctx // 2)
    if smaller:
        hint = f"n_ctx {smaller} would fit (--n-ctx {smaller})"
    else:
        pick = recommend(n_ctx, budget)
        hint = (f"{pick.model.family} {pick.quant} would fit at n_ctx {pick.n_ctx} "
                f"(hearth models pull {pick.model.family}:{pick.quant})" if pick
                else "no model in hearth's catalog fits either")
    raise ModelLoadError(
        f"{path.name} needs about {mib(result.needed)} at n_ctx {n_ctx} (weights {mib(result.weights - result.reclaimable)}, "
        f"KV cache {mib(result.kv_cache)}, compute {mib(result.compute)}), but this machine can give "
        f"{mib(budget.usable)} ({budget.source} {mib(budget.available)} minus a {mib(budget.margin)} "
        f"margin): {hint}"
    )

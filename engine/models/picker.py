"""Pick the largest quantization of a model that fits the memory budget, and say why.

Rules, in order:
1. List the family's quantizations from best to worst (:data:`engine.models.catalog.QUANT_ORDER`) with
   their estimates at the requested context; pick the first that fits the budget.
2. On ARM (aarch64), when the pick is Q4_K_M, Q4_K_S or IQ4_XS and Q4_0 also fits with a file
   within :data:`ARM_CLOSE` of the pick's, take Q4_0: llama.cpp repacks Q4_0 at load time into
   interleaved layouts with NEON / i8mm dot-product kernels (ggml-cpu/repack.cpp), which process
   prompts markedly faster on a Pi's Cortex-A76 than the K-quants' generic path.
3. If nothing fits, halve the context (not below :data:`MIN_CTX`) and try again.
4. If still nothing fits, name the largest smaller catalog model that fits (at the requested
   context, or at :data:`MIN_CTX`).

Across the catalog (:func:`recommend`), with this machine's measured speed
(:mod:`engine.models.speed`): the largest model that fits *and* is predicted to generate at least
``min_tokens_per_s``; if none is that fast, the fastest that fits, saying so.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

from engine.models.budget import MemoryBudget
from engine.models.catalog import QUANT_ORDER, CatalogModel, load_catalog
from engine.models.estimate import MemoryEstimate, mib
from engine.models.speed import MachineSpeed

MIN_CTX = 2048
"""The smallest context hearth falls back to: a system prompt and a few turns."""

ARM_CLOSE = 0.10
"""Files within 10% of each other count as "close" for the ARM rule."""

QUALITY_FLOOR = "Q4_0"
"""Across the catalog, prefer a model at this quantization or better: below 4 bits a small model
loses more quality than the next smaller model at 4+ bits (llama.cpp's perplexity tables for
quantize show the steep rise below Q4)."""


@dataclass(frozen=True)
class Option:
    quant: str
    size: int
    estimate: MemoryEstimate
    fits: bool


@dataclass
class Plan:
    """The outcome for one family: every option at ``n_ctx``, the pick (or ``None``), why, and
    when nothing fits, a smaller model that would (``alternative``)."""

    model: CatalogModel
    n_ctx: int
    budget: MemoryBudget
    options: list[Option]
    pick: Option | None
    reason: str
    alternative: Plan | None = field(default=None)
    tokens_per_s: float | None = None
    """Predicted token generation of the pick on this machine (None: not measured)."""

    def predict(self, speed: MachineSpeed | None) -> None:
        """Set :attr:`tokens_per_s` for the pick on a machine of ``speed`` (``None``: unknown)."""
        self.tokens_per_s = speed.tokens_per_s(self.pick.size) if speed and self.pick else None

    @property
    def quant(self) -> str:
        """The picked quantization; "" when nothing fits."""
        return self.pick.quant if self.pick is not None else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.model.family, "repo": self.model.repo, "n_ctx": self.n_ctx,
            "budget": self.budget.as_dict(),
            "pick": None if self.pick is None else {
                "quant": self.pick.quant, "file": self.model.file_name(self.pick.quant),
                "size_bytes": self.pick.size, "estimate": self.pick.estimate.as_dict()},
            "reason": self.reason,
            "predicted_tokens_per_s": self.tokens_per_s,
            "options": [{"quant": o.quant, "size_bytes": o.size, "estimate": o.estimate.as_dict(),
                         "fits": o.fits} for o in self.options],
            "alternative": self.alternative.as_dict() if self.alternative else None,
        }


def _options(model: CatalogModel, n_ctx: int, budget: MemoryBudget, sizes: dict[str, int], machine: str) -> list[Option]:
    options = []
    for quant in model.quants:
        size = sizes.get(quant)
        est = model.estimate(quant, n_ctx, size, machine)
        options.append(Option(quant, model.approx_size(quant) if size is None else size, est,
                              est.needed <= budget.usable))
    return options


def plan_family(
    model: CatalogModel, n_ctx: int, budget: MemoryBudget, sizes: dict[str, int] | None = None,
    machine: str | None = None, catalog: tuple[CatalogModel, ...] | None = None,
) -> Plan:
    """Choose a quantization of ``model`` for ``n_ctx`` tokens within ``budget`` (rules above).

    Args:
        sizes: real file sizes in bytes by quantization (from the hub); missing ones are estimated.
        machine: ``platform.machine()`` by default (``aarch64`` turns the ARM rule on).
        catalog: where to look for a smaller model; the shipped catalog by default.
    """
    machine = machine or platform.machine()
    sizes = sizes or {}
    n_ctx = min(n_ctx, model.arch.n_ctx_train)
    ctx = n_ctx
    while True:
        options = _options(model, ctx, budget, sizes, machine)
        fitting = [o for o in options if o.fits]
        if fitting:
            pick = fitting[0]
            reason = (f"{pick.quant} is the largest quantization whose estimate, {mib(pick.estimate.needed)} "
                      f"at n_ctx {ctx}, fits the {mib(budget.usable)} this machine can give")
            if ctx < n_ctx:
                reason += f" (nothing fit at n_ctx {n_ctx})"
            pick, reason = _arm_rule(pick, fitting, machine, reason)
            return Plan(model, ctx, budget, options, pick, reason)
        if ctx // 2 < MIN_CTX:
            break
        ctx //= 2
    first = _options(model, n_ctx, budget, sizes, machine)
    smallest = first[-1].estimate.needed if first else 0
    plan = Plan(model, n_ctx, budget, first, None,
                f"no quantization of {model.family} fits: even {first[-1].quant if first else '-'} needs "
                f"{mib(smallest)} at n_ctx {n_ctx} (and more than the budget at n_ctx {MIN_CTX}); "
                f"this machine can give {mib(budget.usable)}")
    plan.alternative = _smaller_model(model, n_ctx, budget, machine, catalog or load_catalog())
    if plan.alternative and plan.alternative.pick:
        alt = plan.alternative
        plan.reason += f"; {alt.model.family} {alt.quant} would fit at n_ctx {alt.n_ctx}"
    return plan


def _arm_rule(pick: Option, fitting: list[Option], machine: str, reason: str) -> tuple[Option, str]:
    if machine not in ("aarch64", "arm64") or pick.quant not in ("Q4_K_M", "Q4_K_S", "IQ4_XS"):
        return pick, reason
    q4_0 = next((o for o in fitting if o.quant == "Q4_0"), None)
    if q4_0 is not None and abs(q4_0.size - pick.size) <= ARM_CLOSE * pick.size:
        return q4_0, (f"Q4_0 instead of {pick.quant} (files within {ARM_CLOSE:.0%} of each other): on ARM "
                      f"llama.cpp repacks Q4_0 for its fast NEON/i8mm kernels; {reason}")
    return pick, reason


def _smaller_model(model: CatalogModel, n_ctx: int, budget: MemoryBudget, machine: str,
                   catalog: tuple[CatalogModel, ...]) -> Plan | None:
    for candidate in sorted((m for m in catalog if m.params < model.params), key=lambda m: -m.params):
        plan = plan_family(candidate, n_ctx, budget, machine=machine, catalog=())
        if plan.pick is not None:
            return plan
    return None


def recommend(n_ctx: int, budget: MemoryBudget, machine: str | None = None,
              catalog: tuple[CatalogModel, ...] | None = None, speed: MachineSpeed | None = None,
              min_tokens_per_s: float = 0.0) -> Plan | None:
    """Across the catalog: the largest model (by parameters) with a quantization of
    :data:`QUALITY_FLOOR` or better that fits at ``n_ctx``; else any quantization at ``n_ctx``;
    else the same two at a smaller context (down to :data:`MIN_CTX`); else ``None``. With
    ``speed``, only models predicted at ``min_tokens_per_s`` (tokens/s) or more count; when none
    is, the fastest of the first group that has a model (the reason says it is slow)."""
    catalog = catalog or load_catalog()
    plans = [p for p in (plan_family(m, n_ctx, budget, machine=machine, catalog=()) for m in catalog)
             if p.pick is not None]
    for plan in plans:
        plan.predict(speed)
    full = [p for p in plans if p.n_ctx == min(n_ctx, p.model.arch.n_ctx_train)]

    def good(group: list[Plan]) -> list[Plan]:
        return [p for p in group if QUANT_ORDER.index(p.quant) <= QUANT_ORDER.index(QUALITY_FLOOR)]

    def fast(group: list[Plan]) -> list[Plan]:
        return [p for p in group if p.tokens_per_s is None or p.tokens_per_s >= min_tokens_per_s]

    def largest(group: list[Plan]) -> Plan:
        return max(group, key=lambda p: (p.n_ctx, p.model.params, -QUANT_ORDER.index(p.quant)))

    groups = [g for g in (good(full), full, good(plans), plans) if g]
    if not groups:
        return None
    for group in groups:
        if fast(group):
            pick = largest(fast(group))
            if speed is not None and pick.tokens_per_s is not None:
                slower = [p for p in group if p.model.params > pick.model.params]
                pick.reason += f"; predicted {pick.tokens_per_s:.1f} tokens/s here"
                if slower:
                    biggest = largest(slower)
                    pick.reason += (f" (the larger {biggest.model.family} fits but is predicted at "
                                    f"{biggest.tokens_per_s:.1f} tokens/s, under {min_tokens_per_s:g})")
            return pick
    pick = max(groups[0], key=lambda p: p.tokens_per_s or 0.0)
    pick.reason += (f"; predicted {pick.tokens_per_s:.1f} tokens/s here: no model that fits reaches "
                    f"{min_tokens_per_s:g} tokens/s on this machine, this is the fastest")
    return pick

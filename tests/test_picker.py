"""The catalog and the quantization picker, on tables of budgets (pure planning: no files)."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.models.budget import MemoryBudget
from engine.models.catalog import QUANT_ORDER, find_model, load_catalog, parse_quant
from engine.models.picker import MIN_CTX, plan_family, recommend
from engine.models.speed import MachineSpeed
from tui.commands.models import parse_size

GIB = 2**30


def budget(text: str) -> MemoryBudget:
    size = parse_size(text)
    return MemoryBudget(available=size, margin=max(size // 10, 128 * 2**20), source="--ram")


def test_catalog_has_the_required_families_with_their_numbers() -> None:
    families = {m.family for m in load_catalog()}
    for name in ("SmolLM2-135M-Instruct", "SmolLM2-360M-Instruct", "SmolLM2-1.7B-Instruct",
                 "Qwen2.5-0.5B-Instruct", "Qwen2.5-1.5B-Instruct", "Qwen2.5-3B-Instruct",
                 "Llama-3.2-1B-Instruct", "Llama-3.2-3B-Instruct", "Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B"):
        assert name in families
    for model in load_catalog():
        assert model.repo.count("/") == 1 and "{quant}" in model.file
        assert model.quants and all(q in QUANT_ORDER for q in model.quants)
        assert model.arch.n_layer > 0 and model.arch.n_head % model.arch.n_head_kv == 0


def test_catalog_estimate_of_the_starter_is_close_to_the_file_estimate(gguf_path) -> None:
    """The catalog's SmolLM2-135M numbers give the same KV cache and compute as its GGUF header."""
    from engine.models.fit import estimate_file

    model = find_model("SmolLM2-135M-Instruct")
    from_file = estimate_file(gguf_path, 4096)
    from_catalog = model.estimate("Q4_0", 4096, size=gguf_path.stat().st_size, machine="none")
    assert from_catalog.kv_cache == from_file.kv_cache
    assert from_catalog.compute == from_file.compute
    assert from_catalog.overhead == from_file.overhead


@pytest.mark.parametrize(
    "family, ram, n_ctx, quant, ctx",
    [
        ("Qwen2.5-1.5B-Instruct", "8G", 4096, "Q8_0", 4096),    # plenty: the best
        ("Qwen2.5-1.5B-Instruct", "2G", 4096, "Q6_K", 4096),
        ("Qwen2.5-1.5B-Instruct", "1.6G", 4096, "Q5_K_S", 4096),
        ("Qwen2.5-1.5B-Instruct", "1.35G", 4096, "Q3_K_M", 4096),
        ("Qwen2.5-1.5B-Instruct", "1.2G", 8192, "Q2_K", 4096),  # only a smaller context fits
        ("Qwen2.5-1.5B-Instruct", "1.05G", 8192, "Q2_K", 2048),
        ("Llama-3.2-3B-Instruct", "4G", 4096, "Q6_K", 4096),
        ("SmolLM2-135M-Instruct", "1G", 8192, "Q8_0", 8192),
    ],
)
def test_picks_the_largest_quantization_that_fits(family, ram, n_ctx, quant, ctx) -> None:
    plan = plan_family(find_model(family), n_ctx, budget(ram), machine="x86_64")
    assert plan.pick is not None, plan.reason
    assert (plan.pick.quant, plan.n_ctx) == (quant, ctx), plan.reason
    assert plan.pick.estimate.needed <= plan.budget.usable
    better = [o for o in plan.options if QUANT_ORDER.index(o.quant) < QUANT_ORDER.index(quant)]
    if plan.n_ctx == n_ctx:
        assert not any(o.fits for o in better)
    assert quant in plan.reason and "fits" in plan.reason


def test_options_are_listed_best_to_worst_with_shrinking_estimates() -> None:
    plan = plan_family(find_model("Qwen3-1.7B"), 4096, budget("8G"), machine="x86_64")
    assert [o.quant for o in plan.options] == QUANT_ORDER
    sizes = [o.size for o in plan.options]
    assert sizes == sorted(sizes, reverse=True)


def test_none_fits_names_a_smaller_model() -> None:
    plan = plan_family(find_model("Qwen2.5-3B-Instruct"), 8192, budget("1G"), machine="x86_64")
    assert plan.pick is None
    assert plan.alternative is not None and plan.alternative.pick is not None
    alt = plan.alternative
    assert alt.model.params < plan.model.params and alt.pick.estimate.needed <= alt.budget.usable
    assert "fits" in plan.reason and alt.model.family in plan.reason
    assert alt.n_ctx >= MIN_CTX


def test_nothing_at_all_fits() -> None:
    plan = plan_family(find_model("Qwen3-4B"), 4096, budget("200M"), machine="x86_64")
    assert plan.pick is None and plan.alternative is None
    assert "no quantization" in plan.reason


def test_arm_prefers_q4_0_when_close_to_the_k_quant() -> None:
    model = find_model("Qwen2.5-1.5B-Instruct")
    x86 = plan_family(model, 4096, budget("1.5G"), machine="x86_64")
    arm = plan_family(model, 4096, budget("1.5G"), machine="aarch64")
    assert x86.pick.quant == "Q4_K_M"
    assert arm.pick.quant == "Q4_0" and "ARM" in arm.reason


@pytest.mark.parametrize("ram, family", [("1G", "Qwen2.5-0.5B-Instruct"), ("2G", "Qwen3-1.7B"),
                                          ("8G", "Qwen3-4B")])
def test_recommend_across_the_catalog(ram, family) -> None:
    plan = recommend(4096, budget(ram), machine="x86_64")
    assert plan is not None and plan.model.family == family
    assert QUANT_ORDER.index(plan.pick.quant) <= QUANT_ORDER.index("Q4_0")


def test_recommend_takes_the_largest_model_fast_enough_here() -> None:
    """With this machine's speed, the largest fitting model predicted at min_tokens_per_s or more;
    on a machine too slow for any, the fastest, saying so."""
    pi = MachineSpeed(bandwidth=4e9, fixed_s=0.02, threads=4)  # a Pi 5-like machine
    plan = recommend(4096, budget("8G"), machine="x86_64", speed=pi, min_tokens_per_s=8.0)
    assert plan is not None and plan.tokens_per_s is not None and plan.tokens_per_s >= 8.0
    assert plan.model.params < find_model("Qwen3-4B").params  # memory alone picks Qwen3-4B
    assert "under 8" in plan.reason and "Qwen3-4B" in plan.reason
    bigger = [m for m in load_catalog() if m.params > plan.model.params]
    assert all(pi.tokens_per_s(plan_family(m, 4096, budget("8G"), catalog=()).pick.size) < 8.0 for m in bigger)
    fast = MachineSpeed(bandwidth=400e9, fixed_s=0.001, threads=16)
    assert recommend(4096, budget("8G"), machine="x86_64", speed=fast, min_tokens_per_s=8.0).model.family == "Qwen3-4B"
    crawl = MachineSpeed(bandwidth=0.2e9, fixed_s=0.05, threads=1)
    slowest = recommend(4096, budget("8G"), machine="x86_64", speed=crawl, min_tokens_per_s=8.0)
    assert slowest.model.family == "SmolLM2-135M-Instruct" and "this is the fastest" in slowest.reason


def test_unknown_family_and_quant_name_the_nearest() -> None:
    with pytest.raises(ConfigError, match="did you mean Qwen2.5-1.5B-Instruct"):
        find_model("qwen2.5-1.5b-instruc")
    with pytest.raises(ConfigError, match="did you mean Q4_K_M"):
        parse_quant("Q4_KM")
    assert parse_quant("q5_k_s") == "Q5_K_S"

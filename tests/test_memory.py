"""The memory estimate against real peak RSS, the budget, and refusing a model that does not fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.quants import quantized
from engine.chat.llama import LlamaBackend
from engine.errors import ConfigError, ModelLoadError
from engine.models.budget import MemoryBudget, _cgroup_room, memory_budget
from engine.models.fit import check_fits, estimate_file
from tests.cgroup import in_group, v1_memory_group
from tui.cli import main
from tui.commands.models import parse_size

MIB = 2**20


@pytest.fixture(scope="module")
def quants(gguf_path: Path) -> dict[str, Path]:
    """The starter Q4_1 and three quantizations made from it with llama.cpp's quantizer."""
    return {"Q4_1": gguf_path, **{q: quantized(gguf_path, q) for q in ("Q8_0", "Q4_0", "Q2_K")}}


def measured_peak_rss(model: Path, n_ctx: int) -> int:
    """Peak RSS of a fresh process that loads ``model`` and fills ``n_ctx`` (bench/rss_probe.py)."""
    out = subprocess.run([sys.executable, "-m", "bench.rss_probe", str(model), str(n_ctx)],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    line = next(row for row in out.stdout.splitlines() if row.startswith("{"))
    return json.loads(line)["peak_rss"]


@pytest.mark.model
@pytest.mark.parametrize("quant", ["Q8_0", "Q4_0", "Q2_K"])
@pytest.mark.parametrize("n_ctx", [1024, 2048, 4096])
def test_estimate_is_within_5_percent_of_measured_peak_rss(quants, quant: str, n_ctx: int) -> None:
    predicted = estimate_file(quants[quant], n_ctx)
    measured = measured_peak_rss(quants[quant], n_ctx)
    assert not predicted.approximate
    assert abs(predicted.total / measured - 1) <= 0.05, (
        f"{quant} n_ctx {n_ctx}: predicted {predicted.total / MIB:.1f} MiB, measured {measured / MIB:.1f} MiB")


@pytest.mark.model
@pytest.mark.parametrize("n_ctx", [1024, 4096])
def test_estimate_holds_on_a_second_architecture(gemma_path: Path, n_ctx: int) -> None:
    """Gemma 3 270M: a 262,144-token SentencePiece vocabulary (the tokenizer tables from the header's
    own counts, no BPE merges) and sliding-window attention (a second KQ mask)."""
    predicted = estimate_file(gemma_path, n_ctx)
    measured = measured_peak_rss(gemma_path, n_ctx)
    assert predicted.overhead < 100 * MIB  # 390 bytes per token (fitted on SmolLM2) gave 137 MiB
    assert abs(predicted.total / measured - 1) <= 0.05, (
        f"n_ctx {n_ctx}: predicted {predicted.total / MIB:.1f} MiB, measured {measured / MIB:.1f} MiB")


def test_estimate_parts_grow_as_they_should(quants) -> None:
    small, large = estimate_file(quants["Q8_0"], 1024), estimate_file(quants["Q8_0"], 4096)
    assert large.weights == small.weights and large.overhead == small.overhead
    assert large.kv_cache == 4 * small.kv_cache  # KV cache is linear in n_ctx
    assert estimate_file(quants["Q8_0"], 1000).kv_cache == small.kv_cache  # padded to 256 cells
    assert estimate_file(quants["Q2_K"], 1024).weights < small.weights


def test_missing_metadata_marks_the_estimate_approximate(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "bare.gguf"
    writer = gguf.GGUFWriter(path, "llama")  # architecture only: no block_count, no head counts
    writer.add_tensor("output.weight", np.zeros((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    estimate = estimate_file(path, 2048)
    assert estimate.approximate and estimate.weights == 64 * 64 * 4


def test_cgroup_memory_max_caps_the_budget(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    leaf = root / "user.slice" / "hearth.scope"
    leaf.mkdir(parents=True)
    (root / "user.slice" / "memory.max").write_text("max\n")
    (root / "user.slice" / "memory.current").write_text("100\n")
    (leaf / "memory.max").write_text(f"{1024 * MIB}\n")
    (leaf / "memory.current").write_text(f"{200 * MIB}\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("0::/user.slice/hearth.scope\n")
    assert _cgroup_room(root, proc) == (824 * MIB, "cgroup v2 memory.max")
    (leaf / "memory.max").write_text("max\n")
    assert _cgroup_room(root, proc) is None


def test_cgroup_v1_limits_nested_and_container_root(tmp_path: Path) -> None:
    """cgroup v1: the tightest of the group's and its ancestors' memory.limit_in_bytes minus use;
    "no limit" is the huge page counter; in a container the host path is not under the mount and
    the mount's own limit counts."""
    root = tmp_path / "cgroup"
    memory = root / "memory"
    parent = memory / "docker"
    leaf = parent / "abc123"
    leaf.mkdir(parents=True)
    unlimited = "9223372036854771712\n"
    for directory, limit, used in ((memory, unlimited, 5 * 2**30), (parent, f"{600 * MIB}\n", 500 * MIB),
                                   (leaf, f"{1024 * MIB}\n", 300 * MIB)):
        (directory / "memory.limit_in_bytes").write_text(limit)
        (directory / "memory.usage_in_bytes").write_text(f"{used}\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("12:pids:/docker/abc123\n4:memory:/docker/abc123\n0::/\n")
    assert _cgroup_room(root, proc) == (100 * MIB, "cgroup v1 memory.limit_in_bytes")  # the parent's
    (parent / "memory.limit_in_bytes").write_text(unlimited)
    assert _cgroup_room(root, proc) == (724 * MIB, "cgroup v1 memory.limit_in_bytes")
    proc.write_text("4:memory:/host/path/not/mounted\n")  # a container: its own group is the root
    (memory / "memory.limit_in_bytes").write_text(f"{2 * 2**30 + 256 * MIB}\n")
    (memory / "memory.usage_in_bytes").write_text(f"{2 * 2**30}\n")
    assert _cgroup_room(root, proc) == (256 * MIB, "cgroup v1 memory.limit_in_bytes")
    (memory / "memory.limit_in_bytes").write_text(unlimited)
    assert _cgroup_room(root, proc) is None


@pytest.mark.model
def test_ask_is_refused_before_loading_in_a_cgroup_v1_memory_group(gguf_path: Path, tmp_path: Path) -> None:
    """A real cgroup v1 memory group limited to 150 MiB (Docker on a v1 host, older Raspberry Pi
    OS): hearth reads the limit and refuses the model with the figures, instead of the OOM
    killer ending it (exit 137, no message)."""
    with v1_memory_group(150 * MIB) as group:
        hearth = Path(sys.executable).with_name("hearth")
        done = subprocess.run(in_group(group, [str(hearth), "ask", "--model", str(gguf_path),
                                               "--n-ctx", "2048", "What is the capital of France?"]),
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"),
                                   "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_STATE_HOME": str(tmp_path / "s")})
        assert int((group / "memory.failcnt").read_text()) == 0  # never even reached the limit
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cgroup v1 memory.limit_in_bytes" in lines[0], done.stderr
    assert "needs about" in lines[0] and "Traceback" not in done.stderr and not done.stdout


def test_ram_override_keeps_a_margin() -> None:
    budget = memory_budget(parse_size("4G"))
    assert budget.available == 4 * 1024 * MIB and budget.source == "--ram"
    assert budget.usable == budget.available - int(budget.available * 0.10)
    assert memory_budget(parse_size("512M")).usable == 384 * MIB  # at least 128 MiB kept
    for text in ("lots", "4Q", "4", "4 bananas"):
        with pytest.raises(ConfigError, match="not a size"):
            parse_size(text)


def fits_in(budget: MemoryBudget):
    """The fit check the factory hands the llama.cpp backend, against ``budget``."""
    return lambda path, n_ctx: check_fits(path, n_ctx, budget)


def test_model_too_large_is_refused_before_loading(gguf_path: Path) -> None:
    budget = MemoryBudget(available=410 * MIB, margin=128 * MIB, source="test")
    backend = LlamaBackend(gguf_path, n_ctx=8192, fit_check=fits_in(budget))
    with pytest.raises(ModelLoadError) as caught:
        backend.load()
    message = caught.value.message
    assert "needs about 581.3 MiB at n_ctx 8192" in message and "can give 282.0 MiB" in message
    assert "n_ctx 2048 would fit" in message
    assert not backend.loaded
    tiny = MemoryBudget(available=250 * MIB, margin=128 * MIB, source="test")
    with pytest.raises(ModelLoadError, match="no model in hearth's catalog fits either"):
        LlamaBackend(gguf_path, n_ctx=2048, fit_check=fits_in(tiny)).load()
    with pytest.raises(ModelLoadError, match=r"SmolLM2-135M-Instruct Q\w+ would fit at n_ctx 2048 \(hearth models pull"):
        LlamaBackend(quantized(gguf_path, "Q8_0"), n_ctx=4096,
                     fit_check=fits_in(MemoryBudget(available=420 * MIB, margin=128 * MIB, source="test"))).load()


def test_models_info_json_gives_the_estimate_parts_and_budget(gguf_path: Path, capsys) -> None:
    assert main(["models", "info", str(gguf_path), "--ctx", "2048", "--ram", "1G", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    parts = record["estimate"]
    assert set(parts) >= {"weights", "kv_cache", "compute", "overhead", "total"}
    assert parts["total"] == sum(parts[k] for k in ("weights", "kv_cache", "compute", "overhead"))
    assert record["budget"]["available"] == 1024 * MIB and record["fits"] is True
    assert record["quantization"] == "Q4_1" and record["n_layer"] == 30


def test_models_info_text_says_when_it_does_not_fit(gguf_path: Path, capsys) -> None:
    assert main(["models", "info", str(gguf_path), "--ctx", "8192", "--ram", "300M"]) == 0
    out = capsys.readouterr().out
    assert "does NOT fit" in out and "kv_cache" in out


def test_models_info_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x00" * 10)
    assert main(["models", "info", str(junk)]) == 1
    assert main(["models", "info", str(tmp_path / "none.gguf")]) == 1
    assert main(["models", "info", "--ram", "lots"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("hearth: ") for line in err)
    assert "Traceback" not in "".join(err)


@pytest.mark.parametrize("quant", ["Q4_1", "Q8_0", "Q4_0", "Q2_K"])
def test_header_reader_agrees_with_the_gguf_package(quants, quant: str) -> None:
    """hearth walks the header itself (the gguf package's reader takes seconds on a vocabulary);
    every key, value and tensor must match what ``gguf.GGUFReader`` reads."""
    import gguf

    from engine.models.gguf import Skipped, read_header

    fields, tensors = read_header(quants[quant])
    reader = gguf.GGUFReader(quants[quant])
    assert [(t.name, t.type_name, t.n_elements, t.n_bytes) for t in tensors] == [
        (t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in reader.tensors]
    expected = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert set(fields) == set(expected)
    for key, field in expected.items():
        theirs, ours = field.contents(), fields[key]
        if isinstance(ours, Skipped):
            assert ours.count == len(theirs), key
        elif isinstance(ours, float):
            assert ours == pytest.approx(theirs), key
        else:
            assert ours == theirs, key

"""Models other tools downloaded (Hugging Face cache, Ollama, LM Studio) are found where they
are and run without copying; ``--model FAMILY`` fetches the catalog pick first."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.quants import quantized
from engine import paths
from tests.hubserver import HubServer
from tui.cli import main


@pytest.fixture
def other_tools(gguf_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The real GGUF laid out as each tool stores it."""
    sha = hashlib.sha256(gguf_path.read_bytes()).hexdigest()
    # Hugging Face hub cache: blobs by hash, snapshots/<commit>/<file> -> ../../blobs/<hash>
    hf = tmp_path / "hf" / "hub" / "models--bartowski--SmolLM2-135M-Instruct-GGUF"
    commit = "a" * 40
    (hf / "blobs").mkdir(parents=True)
    (hf / "refs").mkdir()
    (hf / "refs" / "main").write_text(commit)
    shutil.copyfile(gguf_path, hf / "blobs" / sha)
    snapshot = hf / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "SmolLM2-135M-Instruct-Q4_1.gguf").symlink_to(Path("../..") / "blobs" / sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    # Ollama: manifests/<host>/library/<model>/<tag> naming a blobs/sha256-<hash> layer
    ollama = tmp_path / "ollama"
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    manifest.parent.mkdir(parents=True)
    (ollama / "blobs").mkdir()
    (ollama / "blobs" / f"sha256-{sha}").symlink_to(gguf_path)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{sha}"},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:0"}]}))
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    # LM Studio: ~/.lmstudio/models/<publisher>/<repo>/<file>
    home = tmp_path / "home"
    lms = home / ".lmstudio" / "models" / "bartowski" / "SmolLM2-135M-Instruct-GGUF"
    lms.mkdir(parents=True)
    (lms / "SmolLM2-135M-Instruct-Q4_1.gguf").symlink_to(gguf_path)
    (lms / "mmproj-model-f16.gguf").write_bytes(b"GGUF")  # a vision projector is not a chat model
    monkeypatch.setenv("HOME", str(home))
    return {"hf": hf, "ollama": ollama, "lmstudio": lms}


def test_models_list_offers_other_tools_models(other_tools, capsys) -> None:
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    by_source = {row["source"]: row for row in rows}
    assert set(by_source) == {"huggingface", "ollama", "lmstudio"}
    assert by_source["ollama"]["name"] == "smollm2:135m"
    assert by_source["huggingface"]["name"] == "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
    assert by_source["lmstudio"]["name"] == "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
    assert all(row["quantization"] == "Q4_1" and row["fits"] for row in rows)
    assert not any("mmproj" in row["name"] for row in rows)
    assert list(paths.models_dir().iterdir()) == []  # nothing copied


def hearth_ask(*args: str) -> subprocess.CompletedProcess:
    """``hearth ask`` in a child process (stdin empty), with this test's environment."""
    return subprocess.run([sys.executable, "-m", "tui.cli", "ask", "--temperature", "0",
                           "--max-tokens", "16", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])


@pytest.mark.model
def test_ask_runs_an_ollama_model_by_its_name(other_tools) -> None:
    done = hearth_ask("--model", "smollm2:135m", "What is the capital of France? Answer in one word.")
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


@pytest.mark.model
def test_model_family_is_fetched_then_run(gguf_path, monkeypatch) -> None:
    q4_0 = quantized(gguf_path, "Q4_0")
    repo_file = "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_0.gguf"
    with HubServer({repo_file: q4_0}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = hearth_ask("--model", "SmolLM2-135M-Instruct:Q4_0",
                          "What is the capital of France? Answer in one word.")
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert (paths.models_dir() / "SmolLM2-135M-Instruct-Q4_0.gguf").exists()
    assert os.path.getsize(paths.models_dir() / "SmolLM2-135M-Instruct-Q4_0.gguf") == q4_0.stat().st_size


def test_unknown_model_name_is_one_line() -> None:
    done = hearth_ask("--model", "no-such-model", "hi")
    err = done.stderr.strip()
    assert done.returncode == 1 and err.startswith("hearth: ") and "no-such-model" in err and "\n" not in err

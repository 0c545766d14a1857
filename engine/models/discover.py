"""Finding GGUFs to run: hearth's models directory, and models other tools already downloaded
(the Hugging Face cache, Ollama, LM Studio), offered where they are, without copying."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings

LOG = logging.getLogger("hearth.models")

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
"""Media type of the GGUF layer in an Ollama manifest (ollama/server/images.go)."""


@dataclass(frozen=True)
class LocalModel:
    """A GGUF on this machine. ``source``: hearth, huggingface, ollama or lmstudio."""

    name: str
    path: Path
    source: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def local_models(directory: Path) -> list[Path]:
    """GGUF files directly in ``directory``, largest first (``*.gguf.partial`` downloads and
    vision projectors are not models)."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.glob("*.gguf") if p.is_file() and not _is_projector(p.name)]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def _is_projector(name: str) -> bool:
    return "mmproj" in name.lower()


def huggingface_models(cache_dir: Path | None = None) -> list[LocalModel]:
    """GGUFs in the Hugging Face hub cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` or ``~/.cache/huggingface/hub``, as huggingface_hub
    resolves it), read with ``huggingface_hub.scan_cache_dir``."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    xdg_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    hf_home = Path(os.environ.get("HF_HOME") or xdg_cache / "huggingface")
    cache_dir = cache_dir or Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub")
    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, CorruptedCacheException, OSError):
        return []
    found = {}
    for repo in info.repos:
        for revision in repo.revisions:
            for file in revision.files:
                if file.file_name.endswith(".gguf") and not _is_projector(file.file_name):
                    found[file.blob_path] = LocalModel(f"{repo.repo_id}/{file.file_name}", file.file_path, "huggingface")
    return list(found.values())


def ollama_models(root: Path | None = None) -> list[LocalModel]:
    """GGUF blobs of Ollama's pulled models (``OLLAMA_MODELS``, else ``~/.ollama/models``, else
    the Linux service's ``/usr/share/ollama/.ollama/models``), named ``model:tag`` from the
    manifests."""
    candidates = [Path(os.environ["OLLAMA_MODELS"])] if os.environ.get("OLLAMA_MODELS") else [
        Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]
    models = []
    for base in candidates if root is None else [root]:
        manifests = base / "manifests"
        if not manifests.is_dir():
            continue
        for manifest in manifests.rglob("*"):
            if not manifest.is_file():
                continue
            try:
                layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
            except (OSError, ValueError, AttributeError):
                continue
            digest = next((layer.get("digest", "") for layer in layers if layer.get("mediaType") == OLLAMA_MODEL_LAYER), "")
            blob = base / "blobs" / digest.replace(":", "-")
            if not digest or not blob.is_file():
                continue
            parts = manifest.relative_to(manifests).parts  # host / namespace / model / tag
            name = parts[-2] if len(parts) < 3 or parts[-3] == "library" else f"{parts[-3]}/{parts[-2]}"
            models.append(LocalModel(f"{name}:{parts[-1]}", blob, "ollama"))
    return models


def lmstudio_models(roots: list[Path] | None = None) -> list[LocalModel]:
    """GGUFs in LM Studio's models folders (``~/.lmstudio/models``, ``~/.cache/lm-studio/models``),
    named ``publisher/repository/file``."""
    roots = roots or [Path.home() / ".lmstudio" / "models", Path.home() / ".cache" / "lm-studio" / "models"]
    models = []
    for root in roots:
        if root.is_dir():
            for path in sorted(root.rglob("*.gguf")):
                if path.is_file() and not _is_projector(path.name):
                    models.append(LocalModel(str(path.relative_to(root)), path, "lmstudio"))
    return models


def discover_models(models_dir: Path) -> list[LocalModel]:
    """hearth's own models (largest first), then those found in other tools' folders."""
    own = [LocalModel(p.name, p, "hearth") for p in local_models(models_dir)]
    return own + huggingface_models() + ollama_models() + lmstudio_models()


def find_local(name: str, models_dir: Path) -> Path | None:
    """A discovered model by name (``qwen2.5:1.5b``, ``org/repo/file.gguf``, ``file.gguf``,
    or the file name without ``.gguf``); ``None`` if none matches."""
    wanted = name.lower().removesuffix(".gguf")
    for model in discover_models(models_dir):
        if wanted in (model.name.lower().removesuffix(".gguf"), model.path.stem.lower()):
            return model.path
    return None


def resolve_model_path(settings: Settings, models_dir: Path) -> Path | None:
    """The model to load: ``model.path`` (from config or ``--model``) if set — a file, or the
    name of a discovered model — else the largest GGUF in ``models_dir``, else ``None``. The file
    itself is checked by the backend."""
    if settings.model.path:
        path = Path(settings.model.path).expanduser()
        if path.exists():
            return path
        return find_local(settings.model.path, models_dir) or path
    found = local_models(models_dir)
    return found[0] if found else None

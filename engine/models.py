"""Finding the GGUF to run."""

from __future__ import annotations

from pathlib import Path

from engine.config import Settings


def local_models(directory: Path) -> list[Path]:
    """GGUF files directly in ``directory``, largest first (ignores partial downloads)."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.glob("*.gguf") if p.is_file()]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def resolve_model_path(settings: Settings, models_dir: Path) -> Path | None:
    """The model to load: ``model.path`` (from config or ``--model``) if set, else the largest
    GGUF in ``models_dir``, else ``None``. The path is not checked here (the backend does)."""
    if settings.model.path:
        return Path(settings.model.path).expanduser()
    found = local_models(models_dir)
    return found[0] if found else None

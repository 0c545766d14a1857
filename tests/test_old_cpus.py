"""hearth on a CPU without AVX2, for real: the build set-up picks for a Celeron N4020 (Gemini Lake:
SSE4.2, no AVX) answers under ``qemu-x86_64 -cpu Nehalem``, where a build with AVX (this machine's,
or the AVX2 build set-up used to make everywhere) dies with SIGILL.

qemu-user emulates the CPU's instructions, not /proc/cpuinfo (it shows the host's), so these runs
use the wheel directly: the build comes from scripts/llama_build.py exactly as set-up makes it
(cached in the test cache: the first run builds it, about 4 minutes), installed with pip into a
directory that PYTHONPATH puts ahead of the venv's own llama_cpp.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE

REPO = Path(__file__).resolve().parent.parent
CPUINFO = REPO / "tests" / "data" / "cpuinfo"
QUESTION = "What is the capital of France?"

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates an x86-64 CPU")


@pytest.fixture(scope="session")
def celeron_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """llama_cpp as set-up builds it on a Celeron N4020, installed into a directory for PYTHONPATH."""
    env = dict(os.environ, HEARTH_LLAMA_BUILDS=str(MODEL_CACHE / "llama-builds"))
    made = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "llama_build.py"), "wheel",
         "--cpuinfo", str(CPUINFO / "celeron-n4020.txt")],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    assert made.returncode == 0, made.stderr
    wheel = Path(made.stdout.strip().splitlines()[-1])
    target = tmp_path_factory.mktemp("celeron-llama")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    return target


def ask_as_nehalem(gguf: Path, tmp: Path, pythonpath: Path | None) -> subprocess.CompletedProcess:
    """``hearth ask`` under qemu emulating a Nehalem (SSE4.2, no AVX), as a user runs it."""
    qemu = shutil.which("qemu-x86_64")
    assert qemu, "qemu-x86_64 is missing (test.sh installs Debian's qemu-user)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HEARTH"))}
    env.update(XDG_CONFIG_HOME=str(tmp / "c"), XDG_DATA_HOME=str(tmp / "d"),
               XDG_STATE_HOME=str(tmp / "s"), XDG_CACHE_HOME=str(tmp / "k"), HOME=str(tmp))
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    hearth = Path(sys.prefix) / "bin" / "hearth"  # a Python script: qemu runs the interpreter
    return subprocess.run(
        [qemu, "-cpu", "Nehalem", sys.executable, str(hearth), "ask", "--model", str(gguf),
         "--n-ctx", "256", "--max-tokens", "8", "--temperature", "0", "--threads", "2", QUESTION],
        env=env, capture_output=True, text=True, timeout=900,
    )


def test_the_build_for_a_cpu_without_avx_answers_on_one(celeron_build: Path, gguf_path: Path, tmp_path: Path) -> None:
    info = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
                          env=dict(os.environ, PYTHONPATH=str(celeron_build)), capture_output=True, text=True, check=True)
    assert "AVX" not in info.stdout and "FMA" not in info.stdout, info.stdout  # the build is SSE-only
    done = ask_as_nehalem(gguf_path, tmp_path, celeron_build)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "Paris" in done.stdout, done.stdout
    log = (tmp_path / "s" / "hearth" / "log" / "hearth.log")
    text = log.read_text() if log.exists() else ""
    uses = text.split("llama.cpp uses ")[1].split(";")[0]  # the log's line on the loaded build
    assert uses.split() == ["SSE3", "SSSE3"], uses


def test_a_build_with_avx_dies_there(gguf_path: Path, tmp_path: Path) -> None:
    """The control: the venv's own build (this machine's, with AVX) under the same emulated CPU
    is killed by SIGILL, so the run above proves the build, not a lenient emulator."""
    record = json.loads((Path(sys.prefix) / "hearth-llama-build.json").read_text())
    assert "AVX" in record["uses"].split()
    done = ask_as_nehalem(gguf_path, tmp_path, None)
    assert done.returncode in (-signal.SIGILL, 128 + signal.SIGILL), (done.returncode, done.stderr[-2000:])
    assert "Paris" not in done.stdout

#!/usr/bin/env python3
"""Build llama-cpp-python for the CPU it runs on (or for another CPU's flags), once per choice.

    python3 scripts/llama_build.py show            what set-up picks here, and why
    python3 scripts/llama_build.py cmake-args      the CMAKE_ARGS value (for pipx / uv tool install)
    python3 scripts/llama_build.py install         build (or reuse) and install into this Python
    python3 scripts/llama_build.py wheel [--cpuinfo FILE | --cmake-args ARGS]
                                                   build (or reuse) and print the wheel's path

The choice is engine.cpu.choose_build on /proc/cpuinfo. Each build is kept as a wheel in
~/.cache/hearth/llama-builds/<version>-<hash of the CMake options>/, built with pip's own cache
off: pip keys the wheels it builds from an sdist by the sdist alone, so with its cache on a second
build with other CMAKE_ARGS silently reuses the first. ``install`` records the choice in
<sys.prefix>/hearth-llama-build.json, and rebuilds when the record differs from the choice (a venv
set up by an older hearth, a CMAKE_ARGS given by hand). Standard library only: it runs before
hearth's dependencies are installed. A CMAKE_ARGS in the environment wins over the choice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.cpu import RECORD_NAME, BuildChoice, choose_build, cpu_flags, setup_record, this_machine  # noqa: E402


def pinned_version() -> str:
    """The llama-cpp-python version pyproject.toml pins (``llama-cpp-python==X``)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"llama-cpp-python==([^"\s;]+)"', text)
    if not match:
        raise SystemExit("hearth: pyproject.toml does not pin llama-cpp-python==VERSION")
    return match.group(1)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("HEARTH_LLAMA_BUILDS", Path(base) / "hearth" / "llama-builds"))


def build_dir(version: str, cmake_args: str) -> Path:
    digest = hashlib.sha256(cmake_args.encode()).hexdigest()[:12]
    return cache_root() / f"{version}-{digest}"


def the_choice(args: argparse.Namespace) -> tuple[BuildChoice | None, str]:
    """(the choice, or None when CMAKE_ARGS is given, and the CMake options to build with)."""
    if getattr(args, "cmake_args", None) is not None:
        return None, args.cmake_args
    if getattr(args, "cpuinfo", None):
        text = Path(args.cpuinfo).read_text(encoding="utf-8")
        choice = choose_build(args.machine or "x86_64", cpu_flags(text))
        return choice, choice.cmake_args
    if os.environ.get("CMAKE_ARGS"):
        return None, os.environ["CMAKE_ARGS"]
    machine, flags = this_machine()
    choice = choose_build(machine, flags)
    return choice, choice.cmake_args


def wheel_for(version: str, cmake_args: str, python: str = sys.executable) -> Path:
    """The llama-cpp-python wheel built with ``cmake_args``: from the cache, or built now
    (5-10 minutes on 2 cores) with pip's cache off. Raises SystemExit when the build fails."""
    where = build_dir(version, cmake_args)
    found = sorted(where.glob("llama_cpp_python-*.whl"))
    if found:
        return found[0]
    print(f"hearth: building llama-cpp-python {version} (5-10 minutes on 2 cores; kept in "
          f"{where})", file=sys.stderr, flush=True)
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=where.parent, prefix=".building-"))
    try:
        env = dict(os.environ, CMAKE_ARGS=cmake_args)
        cmd = [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir",
               "--no-binary", "llama-cpp-python", "--wheel-dir", str(tmp), f"llama-cpp-python=={version}"]
        if subprocess.run(cmd, env=env).returncode != 0:
            raise SystemExit("hearth: building llama-cpp-python failed (it needs a C++ compiler and "
                             "cmake: on Debian, apt-get install g++ cmake)")
        built = sorted(tmp.glob("llama_cpp_python-*.whl"))
        if not built:
            raise SystemExit("hearth: pip built no llama-cpp-python wheel")
        (tmp / "cmake-args.txt").write_text(cmake_args + "\n", encoding="utf-8")
        shutil.rmtree(where, ignore_errors=True)
        os.replace(tmp, where)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return where / built[0].name


def llama_importable() -> bool:
    probe = [sys.executable, "-c", "import llama_cpp"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def install(args: argparse.Namespace) -> int:
    version = pinned_version()
    choice, cmake_args = the_choice(args)
    why = choice.describe() if choice else f"CMAKE_ARGS from the environment: {cmake_args}"
    record = setup_record()
    if record.get("version") == version and record.get("cmake_args") == cmake_args and llama_importable():
        return 0
    print(f"hearth: llama.cpp for this CPU: {why}", file=sys.stderr, flush=True)
    wheel = wheel_for(version, cmake_args)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)]
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"hearth: installing {wheel} failed")
    new = {"version": version, "cmake_args": cmake_args, "choice": why, "wheel": str(wheel),
           "uses": " ".join(choice.uses) if choice else ""}
    (Path(sys.prefix) / RECORD_NAME).write_text(json.dumps(new, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("show", help="what set-up picks on this CPU, and why")
    sub.add_parser("cmake-args", help="the CMAKE_ARGS value for this CPU")
    sub.add_parser("install", help="build (or reuse) and install into this Python")
    wheel = sub.add_parser("wheel", help="build (or reuse) a wheel and print its path")
    wheel.add_argument("--cpuinfo", help="build for the CPU this /proc/cpuinfo text describes")
    wheel.add_argument("--machine", help="that CPU's platform.machine() (default x86_64)")
    wheel.add_argument("--cmake-args", help="build with exactly these CMake options")
    args = parser.parse_args(argv)
    if args.command == "show":
        choice, cmake_args = the_choice(args)
        print(choice.describe() if choice else "CMAKE_ARGS from the environment")
        print(f"CMAKE_ARGS={cmake_args!r}" if cmake_args else "CMAKE_ARGS='' (llama.cpp's default)")
        return 0
    if args.command == "cmake-args":
        print(the_choice(args)[1])
        return 0
    if args.command == "install":
        return install(args)
    print(wheel_for(pinned_version(), the_choice(args)[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

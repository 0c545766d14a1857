"""The CPU's own features, and the llama.cpp build that uses them.

Set-up (``scripts/llama_build.py``) builds llama-cpp-python with the CMake options
:func:`choose_build` returns for the CPU it runs on; ``hearth doctor`` and the log's first lines
compare what the loaded build uses (:func:`build_features`, from ``llama_print_system_info``) with
what the CPU has (:func:`cpu_flags`). Standard library only: set-up runs this before any
dependency is installed.

The x86-64 feature tiers are llama.cpp's own: the CMake options ``GGML_SSE42`` ... ``GGML_AMX_INT8``
and the compiler flags each one adds are in ``ggml/src/ggml-cpu/CMakeLists.txt`` of the llama.cpp
that llama-cpp-python 0.3.36 vendors, and its runtime-selected variants (``GGML_CPU_ALL_VARIANTS``
in ``ggml/src/CMakeLists.txt``: x64, sse42, sandybridge, haswell, skylakex, icelake, alderlake,
sapphirerapids ...) are combinations of the same options. llama-cpp-python loads one
``libggml-cpu`` and never calls ``ggml_backend_load_all``, so it cannot use those runtime variants:
set-up picks one build instead.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from pathlib import Path

AMX_LEFT_OUT = (
    "llama.cpp's AMX path segfaults in ggml_backend_amx_mul_mat on these CPUs "
    "(ggml-org/llama.cpp#20824, closed as stale without a fix)"
)
"""Why set-up builds without AMX even on a CPU that has it (seen on this project's Xeon machines:
a native build crashes on the first decode)."""

# GGML CMake option -> the /proc/cpuinfo flags it compiles for (the -m flags the option adds in
# ggml-cpu/CMakeLists.txt: GGML_AVX512 adds -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw).
# In the order llama.cpp's system info lists them. An option needs its flags and the options
# before it on its line of requirements (_REQUIRES).
X86_OPTIONS: dict[str, tuple[str, ...]] = {
    "SSE42": ("sse4_2",),
    "AVX": ("avx",),
    "AVX_VNNI": ("avx_vnni",),
    "AVX2": ("avx2",),
    "F16C": ("f16c",),
    "FMA": ("fma",),
    "BMI2": ("bmi2",),
    "AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "AVX512_VBMI": ("avx512vbmi",),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
    "AMX_TILE": ("amx_tile",),
    "AMX_INT8": ("amx_int8",),
    "AMX_BF16": ("amx_bf16",),
}
_REQUIRES: dict[str, tuple[str, ...]] = {
    "AVX": ("SSE42",),
    "AVX_VNNI": ("AVX2",),
    "AVX2": ("AVX", "FMA", "F16C"),  # llama.cpp's own tiers never have AVX2 without FMA and F16C
    "F16C": ("AVX",),
    "FMA": ("AVX",),
    "AVX512": ("AVX2",),
    "AVX512_VBMI": ("AVX512",),
    "AVX512_VNNI": ("AVX512",),
    "AVX512_BF16": ("AVX512",),
}
_AMX = ("AMX_TILE", "AMX_INT8", "AMX_BF16")
_X86_MACHINES = {"x86_64", "amd64", "x64"}


@dataclass(frozen=True)
class BuildChoice:
    """The llama.cpp build for one CPU.

    ``cmake_args`` is the value for llama-cpp-python's ``CMAKE_ARGS`` (empty: llama.cpp's default
    native build, right on ARM). ``uses`` names the GGML options switched on; ``left_out`` maps a
    feature the CPU has but the build leaves off to the reason.
    """

    machine: str
    cmake_args: str
    uses: tuple[str, ...]
    left_out: dict[str, str]

    def describe(self) -> str:
        """One line for set-up and the log: what the build uses and what it leaves out, and why."""
        if not self.cmake_args:
            return f"{self.machine}: llama.cpp's native build (-mcpu=native/-march=native)"
        uses = " ".join(self.uses) if self.uses else "baseline x86-64 only (SSE2)"
        line = f"{self.machine}: {uses}"
        by_reason: dict[str, list[str]] = {}
        for feature, why in self.left_out.items():
            by_reason.setdefault(why, []).append(feature)
        for why, features in by_reason.items():
            line += f"; without {', '.join(features)}: {why}"
        return line


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` text: the ``flags`` line on x86,
    ``Features`` on ARM (lower-case words, e.g. ``avx2``, ``asimddp``). Empty when neither is there."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.lower().split())
    return frozenset()


def choose_build(machine: str, flags: frozenset[str] | set[str]) -> BuildChoice:
    """The llama.cpp CMake options for a CPU.

    ``machine`` is ``platform.machine()`` (``x86_64``, ``aarch64`` ...); ``flags`` from
    :func:`cpu_flags`. On x86-64 every instruction-set option is given explicitly (with
    ``GGML_NATIVE=OFF`` they all default to ON up to AVX2, which kills a CPU without AVX2 with
    SIGILL on the first model load): each one is ON exactly when the CPU has its flags and the
    options it builds on, except AMX, which stays off (:data:`AMX_LEFT_OUT`). Elsewhere llama.cpp's
    native build, which compiles for the CPU it runs on.
    """
    machine = machine.lower()
    if machine not in _X86_MACHINES:
        return BuildChoice(machine=machine, cmake_args="", uses=(), left_out={})
    on: list[str] = []
    for option, needs in X86_OPTIONS.items():
        if option in _AMX:
            continue
        if all(f in flags for f in needs):
            on.append(option)
    # Drop options whose requirements are missing, until nothing changes (AVX2 without FMA, ...).
    changed = True
    while changed:
        changed = False
        for option in list(on):
            if any(r not in on for r in _REQUIRES.get(option, ())):
                on.remove(option)
                changed = True
    left_out = {a: AMX_LEFT_OUT for a in _AMX if all(f in flags for f in X86_OPTIONS[a])}
    args = ["-DGGML_NATIVE=OFF"] + [f"-DGGML_{o}={'ON' if o in on else 'OFF'}" for o in X86_OPTIONS]
    return BuildChoice(machine=machine, cmake_args=" ".join(args), uses=tuple(on), left_out=left_out)


def this_machine() -> tuple[str, frozenset[str]]:
    """``(platform.machine(), flags of /proc/cpuinfo)``; empty flags where there is no
    /proc/cpuinfo (not Linux). Raises nothing."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return platform.machine(), cpu_flags(text)


def build_features(system_info: str) -> frozenset[str]:
    """The CPU features a loaded llama.cpp was compiled with, from ``llama_print_system_info()``
    (``"CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ... |"``): the names whose value is not 0."""
    found: set[str] = set()
    for part in system_info.replace(":", "|").split("|"):
        name, sep, value = part.partition("=")
        if sep and value.strip() not in ("", "0"):
            found.add(name.strip())
    return frozenset(found)


def unused_features(machine: str, flags: frozenset[str], built: frozenset[str]) -> list[str]:
    """The GGML features this CPU has that the loaded build does not use, AMX excepted (it is
    left out on purpose: :data:`AMX_LEFT_OUT`). x86-64 only; ``built`` from
    :func:`build_features`. SSE42 never appears in llama.cpp's system info, so it is not reported."""
    if machine.lower() not in _X86_MACHINES:
        return []
    return [o for o in choose_build(machine, flags).uses if o != "SSE42" and o not in built]


RECORD_NAME = "hearth-llama-build.json"
"""Set-up's record of the build it installed, in the environment's ``sys.prefix`` (JSON:
version, cmake_args, choice)."""


def setup_record() -> dict[str, str]:
    """What ``scripts/llama_build.py install`` recorded for this Python environment; empty when
    llama-cpp-python came another way (``pipx install``, ``uv tool install``, pip by hand)."""
    import json

    try:
        data = json.loads((Path(sys.prefix) / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def missing_for_build(uses: str, flags: frozenset[str]) -> list[str]:
    """The GGML options a build was made for (``uses``: set-up's record, "SSE42 AVX AVX2 ...")
    whose instructions this CPU lacks: non-empty means llama.cpp would die with SIGILL ("Illegal
    instruction") on the first model load, as a venv copied from another machine would."""
    if not flags:  # no /proc/cpuinfo: nothing to compare
        return []
    return [o for o in uses.split() if o in X86_OPTIONS and not all(f in flags for f in X86_OPTIONS[o])]


def build_runs_here() -> str:
    """Empty when set-up's recorded llama.cpp build can run on this CPU (or nothing is recorded);
    otherwise one line saying why not and what to do. Call before ``import llama_cpp``."""
    missing = missing_for_build(setup_record().get("uses", ""), this_machine()[1])
    if not missing:
        return ""
    return (f"this llama.cpp was built for {', '.join(missing)}, which this CPU does not have (it "
            "would stop with 'Illegal instruction'): run scripts/setup.sh to build it for this CPU")


def build_report(system_info: str, machine: str, flags: frozenset[str]) -> str:
    """One line for the log and ``hearth doctor``: the CPU features the loaded llama.cpp uses
    and those this CPU has that it does not. ``system_info`` is ``llama_print_system_info()``."""
    built = build_features(system_info)
    order = ["SSE3", "SSSE3", *X86_OPTIONS, "NEON", "ARM_FMA", "FP16_VA", "DOTPROD", "MATMUL_INT8",
             "SVE", "SME"]
    uses = [f for f in order if f in built] or ["no SIMD features"]
    line = f"llama.cpp uses {' '.join(uses)}"
    unused = unused_features(machine, flags, built)
    if unused:
        line += f"; this CPU also has {' '.join(unused)}, which this build does not use"
    if "AMX_INT8" not in built and choose_build(machine, flags).left_out:
        line += "; AMX left out on purpose (ggml-org/llama.cpp#20824)"
    return line

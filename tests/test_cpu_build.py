"""The llama.cpp build set-up picks for a CPU (engine.cpu), on real /proc/cpuinfo texts, and what
the installed build uses on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cpu import (
    AMX_LEFT_OUT,
    build_features,
    build_report,
    choose_build,
    cpu_flags,
    missing_for_build,
    unused_features,
)

CPUINFO = Path(__file__).parent / "data" / "cpuinfo"

ALL_X86 = ["SSE42", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "BMI2", "AVX512", "AVX512_VBMI",
           "AVX512_VNNI", "AVX512_BF16", "AMX_TILE", "AMX_INT8", "AMX_BF16"]


def options(cmake_args: str) -> dict[str, str]:
    """{"AVX2": "ON", ...} from "-DGGML_AVX2=ON ..."."""
    found = {}
    for arg in cmake_args.split():
        name, _, value = arg.removeprefix("-DGGML_").partition("=")
        found[name] = value
    return found


# (file, platform.machine(), the GGML options the build uses)
TABLE = [
    # Gemini Lake Refresh: SSE4.2, no AVX at all (the SIGILL case).
    ("celeron-n4020.txt", "x86_64", ["SSE42"]),
    # Sandy Bridge laptop: AVX, but no F16C, FMA, AVX2, BMI2.
    ("sandybridge-i7-2620m.txt", "x86_64", ["SSE42", "AVX"]),
    ("haswell-i5-4200u.txt", "x86_64", ["SSE42", "AVX", "AVX2", "F16C", "FMA", "BMI2"]),
    # Alder Lake: AVX-VNNI without AVX-512.
    ("alderlake-i7-12700kf.txt", "x86_64", ["SSE42", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "BMI2"]),
    # This project's machines: AVX-512 with VBMI, VNNI, BF16, and AMX (left out).
    ("xeon-avx512-amx.txt", "x86_64", ["SSE42", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "BMI2",
                                       "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"]),
]


@pytest.mark.parametrize(("name", "machine", "uses"), TABLE, ids=[t[0] for t in TABLE])
def test_x86_build_uses_exactly_what_the_cpu_has(name: str, machine: str, uses: list[str]) -> None:
    choice = choose_build(machine, cpu_flags((CPUINFO / name).read_text()))
    assert list(choice.uses) == uses
    opts = options(choice.cmake_args)
    assert opts.pop("NATIVE") == "OFF"
    # Every option is given, ON or OFF: with GGML_NATIVE=OFF llama.cpp defaults AVX, AVX2, FMA,
    # F16C and BMI2 to ON, which is what killed CPUs without AVX2.
    assert sorted(opts) == sorted(ALL_X86)
    assert [o for o in ALL_X86 if opts[o] == "ON"] == uses


def test_amx_is_left_out_with_the_reason() -> None:
    choice = choose_build("x86_64", cpu_flags((CPUINFO / "xeon-avx512-amx.txt").read_text()))
    assert set(choice.left_out) == {"AMX_TILE", "AMX_INT8", "AMX_BF16"}
    assert "ggml-org/llama.cpp#20824" in AMX_LEFT_OUT
    line = choice.describe()
    assert "AVX512_VNNI" in line and "without AMX_TILE, AMX_INT8, AMX_BF16" in line and "#20824" in line


def test_cpus_without_amx_leave_nothing_out() -> None:
    choice = choose_build("x86_64", cpu_flags((CPUINFO / "haswell-i5-4200u.txt").read_text()))
    assert choice.left_out == {}
    assert "without" not in choice.describe()


@pytest.mark.parametrize("name", ["raspberry-pi-4.txt", "raspberry-pi-5.txt"])
def test_arm_keeps_the_native_build(name: str) -> None:
    flags = cpu_flags((CPUINFO / name).read_text())
    assert "asimd" in flags  # the Features line was read
    choice = choose_build("aarch64", flags)
    assert choice.cmake_args == ""
    assert "native" in choice.describe()


def test_a_feature_without_what_it_builds_on_is_not_used() -> None:
    # AVX2 without FMA (no real CPU, but a VM can hide FMA): llama.cpp has no such tier.
    choice = choose_build("x86_64", frozenset({"sse4_2", "avx", "avx2", "f16c"}))
    assert choice.uses == ("SSE42", "AVX", "F16C")
    # AVX-512 sub-features without the AVX-512 foundation set.
    choice = choose_build("x86_64", frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "avx512_vnni"}))
    assert "AVX512_VNNI" not in choice.uses


def test_cpuinfo_without_flags_gives_the_baseline_build() -> None:
    assert cpu_flags("processor\t: 0\nmodel name\t: mystery\n") == frozenset()
    choice = choose_build("x86_64", frozenset())
    assert choice.uses == ()
    assert options(choice.cmake_args)["AVX2"] == "OFF"
    assert "baseline" in choice.describe()


# What llama_print_system_info() printed for the AVX2-only build set-up used to make here.
AVX2_ONLY_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
                  "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")


def test_unused_features_of_the_old_avx2_only_build_on_this_cpu() -> None:
    flags = cpu_flags((CPUINFO / "xeon-avx512-amx.txt").read_text())
    built = build_features(AVX2_ONLY_INFO)
    assert {"AVX", "AVX2", "FMA", "F16C", "BMI2", "SSE3"} <= built
    assert unused_features("x86_64", flags, built) == ["AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"]
    assert unused_features("aarch64", flags, built) == []
    line = build_report(AVX2_ONLY_INFO, "x86_64", flags)
    assert line.startswith("llama.cpp uses SSE3 SSSE3 AVX AVX2 F16C FMA BMI2;")
    assert "also has AVX_VNNI AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16, which this build does not use" in line
    assert "AMX left out on purpose (ggml-org/llama.cpp#20824)" in line


def test_the_installed_llama_cpp_is_the_build_set_up_picks_here() -> None:
    """scripts/setup.sh installed the build engine.cpu chooses for this CPU: the loaded
    llama.cpp uses every feature the choice names (AMX aside, on purpose)."""
    import llama_cpp

    from engine.cpu import this_machine

    machine, flags = this_machine()
    built = build_features(llama_cpp.llama_print_system_info().decode())
    assert unused_features(machine, flags, built) == []
    assert "AMX_INT8" not in built


def test_a_build_for_a_cpu_this_one_is_not_is_refused_before_it_loads(
        gguf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A venv copied from a Haswell to a Celeron: set-up's record names AVX2, the CPU has none.
    hearth says so in one line instead of dying with SIGILL ("Illegal instruction")."""
    from engine import cpu
    from engine.chat.llama import LlamaBackend
    from engine.errors import ModelLoadError

    celeron = cpu_flags((CPUINFO / "celeron-n4020.txt").read_text())
    haswell_uses = " ".join(choose_build("x86_64", cpu_flags((CPUINFO / "haswell-i5-4200u.txt").read_text())).uses)
    assert missing_for_build(haswell_uses, celeron) == ["AVX", "AVX2", "F16C", "FMA", "BMI2"]
    assert missing_for_build(haswell_uses, cpu_flags((CPUINFO / "xeon-avx512-amx.txt").read_text())) == []
    monkeypatch.setattr(cpu, "setup_record", lambda: {"uses": haswell_uses})
    monkeypatch.setattr(cpu, "this_machine", lambda: ("x86_64", celeron))
    with pytest.raises(ModelLoadError, match=r"built for AVX, AVX2, F16C, FMA, BMI2, which this CPU does not have.*scripts/setup.sh"):
        LlamaBackend(gguf_path, n_ctx=256).load()

"""Prompt processing and token generation: the AVX2-only llama.cpp build set-up used to make on
every x86-64 machine vs the build it picks now for this CPU, in one run.

Each build is the wheel scripts/llama_build.py makes (cached), installed into its own directory
and put first on PYTHONPATH of a fresh process. In each process: the model loads (2 threads,
n_ctx 2048, n_batch 512), a 1,000-token prompt is evaluated (prompt processing, tokens/s), then
128 tokens are generated greedily one at a time (token generation, tokens/s). The two builds
alternate, ROUNDS times; the best of each is reported (the machine's speed wanders between runs).
Both architectures hearth is tested on: SmolLM2-135M (the starter model, Q4_1; and Q4_0 and Q8_0
made from it, the types llama.cpp's x86 kernels repack or run through llamafile's tinyBLAS) and
Gemma 3 270M Q4_K_M.

Run: .venv/bin/python -m bench.cpu_build
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.gemma import ensure_gemma
from bench.quants import quantized
from engine.cpu import choose_build, this_machine
from engine.models.starter import ensure_starter_model
from tests.conftest import MODEL_CACHE

REPO = Path(__file__).resolve().parent.parent
AVX2_ONLY = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
"""What scripts/setup.sh passed on every x86-64 machine before it chose per CPU."""
ROUNDS = 3
PROMPT_TOKENS = 1000
GEN_TOKENS = 128

PROBE = """
import json, sys, time
import llama_cpp
path, n_prompt, n_gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_batch=512, n_threads=2, n_threads_batch=2,
                      verbose=False, seed=1)
words = ("The quick brown fox jumps over the lazy dog while the river runs past the old mill. " * 200)
tokens = llm.tokenize(words.encode(), add_bos=True)[:n_prompt]
llm.eval(tokens[:8]); llm.reset()  # warm-up (first-touch of the weights)
start = time.perf_counter()
llm.eval(tokens)
pp = len(tokens) / (time.perf_counter() - start)
start = time.perf_counter()
for _ in range(n_gen):
    token = llm.sample(temp=0.0)
    llm.eval([token])
tg = n_gen / (time.perf_counter() - start)
print(json.dumps({"pp": pp, "tg": tg, "info": llama_cpp.llama_print_system_info().decode()}))
"""


def installed(cmake_args: str, into: Path) -> Path:
    """The build for ``cmake_args`` (scripts/llama_build.py's cache), pip-installed into ``into``."""
    made = subprocess.run([sys.executable, str(REPO / "scripts" / "llama_build.py"), "wheel",
                           "--cmake-args", cmake_args], capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(made.stderr)
    wheel = made.stdout.strip().splitlines()[-1]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(into), wheel], check=True)
    return into


def run(site: Path, model: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", PROBE, str(model), str(PROMPT_TOKENS), str(GEN_TOKENS)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    machine, flags = this_machine()
    picked = choose_build(machine, flags)
    print(f"this CPU: {picked.describe()}")
    starter = ensure_starter_model(MODEL_CACHE)
    models = {"SmolLM2-135M Q4_1 (the starter)": starter,
              "SmolLM2-135M Q4_0": quantized(starter, "Q4_0"), "SmolLM2-135M Q8_0": quantized(starter, "Q8_0"),
              "Gemma 3 270M Q4_K_M": ensure_gemma(MODEL_CACHE)}
    with tempfile.TemporaryDirectory() as tmp:
        builds = {"AVX2-only (before)": installed(AVX2_ONLY, Path(tmp) / "avx2"),
                  "picked for this CPU": installed(picked.cmake_args, Path(tmp) / "picked")}
        for label, model in models.items():
            best: dict[str, dict[str, float]] = {b: {"pp": 0.0, "tg": 0.0} for b in builds}
            for _ in range(ROUNDS):
                for build, site in builds.items():
                    got = run(site, model)
                    for key in ("pp", "tg"):
                        best[build][key] = max(best[build][key], got[key])
                    best[build]["info"] = got["info"]  # type: ignore[assignment]
            print(f"\n{label}: {PROMPT_TOKENS}-token prompt, {GEN_TOKENS} generated tokens, 2 threads, "
                  f"best of {ROUNDS}")
            print(f"{'build':22} {'prompt processing':>18} {'token generation':>17}")
            for build, fig in best.items():
                print(f"{build:22} {fig['pp']:>12.1f} tok/s {fig['tg']:>11.1f} tok/s")
            old, new = best["AVX2-only (before)"], best["picked for this CPU"]
            print(f"{'ratio picked/before':22} {new['pp'] / old['pp']:>18.2f} {new['tg'] / old['tg']:>17.2f}")
        for build, fig in best.items():
            print(f"\n{build}: {str(fig['info']).strip()}")


if __name__ == "__main__":
    main()

"""Memory estimate accuracy: predicted (engine/models/estimate.py, from the GGUF header) vs
measured peak RSS after loading and filling the context (bench/rss_probe.py, a fresh process
each), on two architectures: the SmolLM2-135M starter (llama, BPE vocabulary of 49,152 tokens and
48,900 merges) and Gemma 3 270M (gemma3, sliding-window attention, a 262,144-token SentencePiece
vocabulary), each at its own quantization and three made with llama.cpp's quantizer. Also the
tokenizer tables: a vocab_only load per model against the estimate's tokenizer part.

Run: .venv/bin/python -m bench.estimate_accuracy [--n-ctx 1024 4096 8192]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

from bench.gemma import ensure_gemma
from bench.quants import quantized
from engine.models.estimate import TOKENIZER_BYTES_PER_MERGE, TOKENIZER_BYTES_PER_TOKEN
from engine.models.fit import estimate_file
from engine.models.gguf import read_gguf
from engine.models.starter import ensure_starter_model

MIB = 2**20
CACHE = Path.home() / ".cache" / "hearth-test"
VOCAB_PROBE = """
import json, sys
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) * 1024
import llama_cpp
before = rss()
llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
print(json.dumps({"tokenizer": rss() - before}))
"""


def models() -> dict[str, dict[str, Path]]:
    smol, gemma = ensure_starter_model(CACHE), ensure_gemma(CACHE)
    return {
        "SmolLM2-135M": {"Q8_0": quantized(smol, "Q8_0"), "Q4_1": smol,
                         "Q4_0": quantized(smol, "Q4_0"), "Q2_K": quantized(smol, "Q2_K")},
        "Gemma-3-270M": {"Q8_0": quantized(gemma, "Q8_0"), "Q4_K_M": gemma,
                         "Q4_0": quantized(gemma, "Q4_0"), "Q2_K": quantized(gemma, "Q2_K")},
    }


def probe(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    return json.loads(next(row for row in out.stdout.splitlines() if row.startswith("{")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ctx", type=int, nargs="+", default=[1024, 4096, 8192])
    args = parser.parse_args()
    files = models()
    print(f"{platform.machine()}, flash attention off, f16 KV cache, n_ubatch 512\n")
    print("tokenizer tables (vocab_only load, RSS after - before):")
    for family, quants in files.items():
        path = next(iter(quants.values()))
        arch = read_gguf(path).arch
        predicted = TOKENIZER_BYTES_PER_TOKEN * arch.n_vocab + TOKENIZER_BYTES_PER_MERGE * arch.n_merges
        measured = probe(["-c", VOCAB_PROBE, str(path)])["tokenizer"]
        print(f"  {family}: {arch.n_vocab} tokens, {arch.n_merges} merges: predicted "
              f"{predicted / MIB:.1f} MiB, measured {measured / MIB:.1f} MiB")
    print(f"\n{'model':13} {'quant':6} {'n_ctx':>6} {'weights':>9} {'KV':>8} {'compute':>9} {'overhead':>9} "
          f"{'predicted':>10} {'measured':>9} {'error':>7}")
    worst = 0.0
    for family, quants in files.items():
        for quant, path in quants.items():
            for n_ctx in args.n_ctx:
                measured = probe(["-m", "bench.rss_probe", str(path), str(n_ctx)])["peak_rss"]
                e = estimate_file(path, n_ctx)
                error = e.total / measured - 1
                worst = max(worst, abs(error))
                print(f"{family:13} {quant:6} {n_ctx:>6} {e.weights / MIB:>9.1f} {e.kv_cache / MIB:>8.1f} "
                      f"{e.compute / MIB:>9.1f} {e.overhead / MIB:>9.1f} {e.total / MIB:>10.1f} "
                      f"{measured / MIB:>9.1f} {100 * error:>+6.1f}%", flush=True)
    print(f"\nMiB; worst error {100 * worst:.1f}% (target: within 5%)")


if __name__ == "__main__":
    main()

"""Predicted vs measured token generation (tokens/s) on this machine, for every model and
quantization available here (SmolLM2-135M and Gemma 3 270M, four quantizations each), in one run.

The prediction is hearth's (engine/models/speed.py): this machine measured once on the starter
model, then ``1 / (fixed_s + bytes_per_token / bandwidth)`` per file. The measurement of each
file is the same token loop (llama-cpp-python, 2 threads, temperature 0, 32 tokens, best of two
runs) in a fresh process per file. Target: every point within ±20%.

Run: .venv/bin/python -m bench.speed_prediction
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.estimate_accuracy import models
from engine.chat.llama import default_threads
from engine.models import speed
from engine.models.gguf import read_gguf

PROBE = """
import json, sys
from pathlib import Path
from engine.models import speed
from engine.models.gguf import read_gguf
path = Path(sys.argv[1])
machine = speed.measure(path, read_gguf(path), int(sys.argv[2]))
print(json.dumps({"s_per_token": machine.fixed_s + speed.bytes_per_token(read_gguf(path)) / machine.bandwidth}))
"""


def main() -> None:
    files = models()
    threads = default_threads()
    starter = files["SmolLM2-135M"]["Q4_1"]
    machine = speed.measure(starter, read_gguf(starter), threads)
    print(f"this machine, {threads} threads: bandwidth {machine.bandwidth / 1e9:.1f} GB/s, "
          f"{1000 * machine.fixed_s:.1f} ms per token beyond the weights (from {starter.name})\n")
    print(f"{'model':13} {'quant':7} {'MiB/token':>10} {'predicted':>10} {'measured':>9} {'error':>7}")
    worst = 0.0
    for family, quants in files.items():
        for quant, path in quants.items():
            meta = read_gguf(path)
            predicted = machine.tokens_per_s(speed.bytes_per_token(meta))
            out = subprocess.run([sys.executable, "-c", PROBE, str(path), str(threads)],
                                 capture_output=True, text=True, check=True)
            measured = 1 / json.loads(out.stdout.strip().splitlines()[-1])["s_per_token"]
            error = predicted / measured - 1
            worst = max(worst, abs(error))
            print(f"{family:13} {quant:7} {speed.bytes_per_token(meta) / 2**20:>10.1f} {predicted:>10.1f} "
                  f"{measured:>9.1f} {100 * error:>+6.1f}%", flush=True)
    print(f"\ntokens/s; worst error {100 * worst:.1f}% (target: within 20%)")


if __name__ == "__main__":
    main()

"""Memory estimate accuracy: predicted (engine/memory.py, from the GGUF header) vs measured peak
RSS after loading and filling the context (bench/rss_probe.py, a fresh process each), for the
SmolLM2-135M starter (Q4_1) and quantizations made from it with llama.cpp's quantizer.

Run: .venv/bin/python -m bench.estimate_accuracy
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

from bench.quants import quantized
from engine.models.fit import estimate_file
from engine.models.starter import ensure_starter_model

MIB = 2**20


def main() -> None:
    source = ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    models = {"Q8_0": quantized(source, "Q8_0"), "Q4_1": source,
              "Q4_0": quantized(source, "Q4_0"), "Q2_K": quantized(source, "Q2_K")}
    print(f"SmolLM2-135M-Instruct, {platform.machine()}, flash attention off, f16 KV cache, n_ubatch 512\n")
    print(f"{'quant':6} {'n_ctx':>6} {'weights':>9} {'KV':>8} {'compute':>9} {'overhead':>9} "
          f"{'predicted':>10} {'measured':>9} {'error':>7}")
    worst = 0.0
    for quant, path in models.items():
        for n_ctx in (1024, 4096, 8192):
            out = subprocess.run([sys.executable, "-m", "bench.rss_probe", str(path), str(n_ctx)],
                                 capture_output=True, text=True, check=True)
            measured = json.loads(next(row for row in out.stdout.splitlines() if row.startswith("{")))["peak_rss"]
            e = estimate_file(path, n_ctx)
            error = e.total / measured - 1
            worst = max(worst, abs(error))
            print(f"{quant:6} {n_ctx:>6} {e.weights / MIB:>9.1f} {e.kv_cache / MIB:>8.1f} "
                  f"{e.compute / MIB:>9.1f} {e.overhead / MIB:>9.1f} {e.total / MIB:>10.1f} "
                  f"{measured / MIB:>9.1f} {100 * error:>+6.1f}%")
    print(f"\nMiB; worst error {100 * worst:.1f}% (target: within 10%)")


if __name__ == "__main__":
    main()

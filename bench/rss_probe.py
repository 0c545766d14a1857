"""Measure a GGUF's real memory: load it with llama-cpp-python at a context size, fill the
context with prompt processing, and print the peak RSS (VmHWM, bytes) as JSON, with llama.cpp's
own buffer sizes from its log. Run in a fresh process per measurement:

    python -m bench.rss_probe MODEL.gguf N_CTX [N_BATCH]

Used by the estimate-accuracy benchmark and test (the estimate must be within 10% of this).
"""

from __future__ import annotations

import json
import re
import sys


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def measure(model: str, n_ctx: int, n_batch: int = 512) -> dict:
    import llama_cpp

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def _log(level, text, _data):  # keep llama.cpp's buffer-size lines, print nothing
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(_log, None)
    baseline = _status("VmRSS")
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_batch=n_batch, n_threads=2, verbose=True)
    # Fill the context: one token repeated, minus room for nothing (prompt processing only).
    fill = [llm.token_bos()] + [1000] * (llm.n_ctx() - 2)
    llm.eval(fill)
    log = "".join(lines)
    mib = lambda pattern: sum(float(x) for x in re.findall(pattern, log))  # noqa: E731
    result = {
        "model": model, "n_ctx": llm.n_ctx(), "filled": len(fill),
        "peak_rss": _status("VmHWM"), "rss": _status("VmRSS"), "baseline_rss": baseline,
        "llama_kv_mib": mib(r"KV (?:self )?size\s*=\s*([\d.]+) MiB") or mib(r"llama_kv_cache: size =\s*([\d.]+) MiB"),
        "llama_compute_mib": mib(r"CPU compute buffer size =\s*([\d.]+) MiB"),
        "llama_output_mib": mib(r"CPU\s+output buffer size =\s*([\d.]+) MiB"),
        "llama_model_mib": mib(r"CPU_Mapped model buffer size =\s*([\d.]+) MiB") or mib(r"CPU model buffer size =\s*([\d.]+) MiB"),
    }
    llm.close()
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(measure(args[0], int(args[1]), int(args[2]) if len(args) > 2 else 512)))

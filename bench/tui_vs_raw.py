"""hearth's TUI against the raw llama-cpp-python loop, in one run, on the same model, prompt,
sampling (temperature 0), seed and thread count.

Figures (issue: the main job):
- start-up: launch -> first frame with a usable prompt (the model still loading);
- streaming efficiency: reply tokens/s in the running TUI (real pty, 80x24) / raw tokens/s;
- idle CPU: CPU seconds of an idle hearth over 30 s after a reply, as % of one core.
Also printed: bytes written to the terminal per token and hearth's CPU per token beyond the
engine (issue: cheap to watch).

Run: .venv/bin/python -m bench.tui_vs_raw [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.ptyrun import PtyProcess, hearth_env, hearth_log, wait_ready
from engine.config import Settings
from engine.models.starter import ensure_starter_model

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
MAX_TOKENS = 600
THREADS = 2
SEED = 1
REPLY_LOG = re.compile(
    r"reply (\w+): prompt (\d+) tokens \((\d+) evaluated\), generated (\d+) tokens, "
    r"TTFT ([\d.]+) s, ([\d.]+|-) tokens/s"
)


MESSAGES = [{"role": "system", "content": Settings().chat.system_prompt},
            {"role": "user", "content": PROMPT}]


def _timed(stream) -> dict:
    cpu0, start = time.process_time(), time.perf_counter()
    first = last = None
    n = 0
    for _ in stream:
        now = time.perf_counter()
        first = first or now
        last = now
        n += 1
    cpu = time.process_time() - cpu0
    return {"tokens": n, "ttft_s": first - start, "tokens_per_s": (n - 1) / (last - first),
            "cpu_s": cpu}


def raw_llama(model: Path, n_ctx: int) -> tuple[dict, dict]:
    """Two plain llama-cpp-python loops, no hearth code: the streaming chat-completion API (what
    a minimal script does), and the bare token loop (``Llama.generate`` on the template-rendered
    prompt, stopping at end-of-generation), the fastest Python can drive llama.cpp."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=n_ctx, n_threads=THREADS,
                          n_threads_batch=THREADS, seed=SEED, verbose=False)

    def chat_api():
        for chunk in llm.create_chat_completion(MESSAGES, stream=True, temperature=0.0, top_p=0.95,
                                                max_tokens=MAX_TOKENS, seed=SEED):
            if chunk["choices"][0]["delta"].get("content"):
                yield chunk

    def token_loop():
        eos = llm.token_eos()
        formatter = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"], stop_token_ids=[eos],
            eos_token=llm.detokenize([eos], special=True).decode(),
            bos_token=llm.detokenize([llm.token_bos()], special=True).decode())
        result = formatter(messages=MESSAGES)
        tokens = llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        for count, token in enumerate(llm.generate(tokens, temp=0.0, top_p=0.95, reset=True)):
            if llama_cpp.llama_vocab_is_eog(vocab, token) or count >= MAX_TOKENS:
                break
            yield llm.detokenize([token])

    llm.reset()
    api = _timed(chat_api())
    llm.reset()
    loop = _timed(token_loop())
    llm.close()
    return api, loop


def hearth_tui(model: Path, n_ctx: int, idle_seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = hearth_env(tmp)
        argv = [str(Path(sys.executable).with_name("hearth")), "--model", str(model),
                "--temperature", "0", "--seed", str(SEED), "--threads", str(THREADS),
                "--n-ctx", str(n_ctx), "--max-tokens", str(MAX_TOKENS)]
        tui = PtyProcess(argv, env)
        try:
            first_frame = wait_ready(tui, env, timeout=30)
            log = hearth_log(env)
            time.sleep(0.5)  # let the UI settle after loading
            cpu0, bytes0 = tui.cpu_seconds(), tui.bytes_out
            tui.write(PROMPT.encode() + b"\r")
            deadline = time.monotonic() + 300
            while not (match := REPLY_LOG.search(log.read_text())):
                assert time.monotonic() < deadline, "reply did not finish"
                time.sleep(0.05)
            time.sleep(1.0)  # the final full render
            cpu_reply, bytes_reply = tui.cpu_seconds() - cpu0, tui.bytes_out - bytes0
            idle0 = tui.cpu_seconds()
            time.sleep(idle_seconds)
            idle_cpu = tui.cpu_seconds() - idle0 if idle_seconds else 0.0
            return {
                "first_frame_s": first_frame, "tokens": int(match[4]), "ttft_s": float(match[5]),
                "tokens_per_s": float(match[6]), "cpu_s": cpu_reply, "bytes": bytes_reply,
                "idle_cpu_s": idle_cpu, "rss_bytes": tui.rss_bytes(),
            }
        finally:
            tui.close()


def _median(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternate raw and TUI runs this many times; medians are reported")
    args = parser.parse_args()
    model = ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    print(f"model {model.name}, n_ctx {args.n_ctx}, {THREADS} threads, temperature 0, "
          f"max {MAX_TOKENS} tokens, terminal 80x24 (pty)\n")
    # Alternate the runs so that drift in the machine's speed hits all three columns alike.
    apis, raws, tuis = [], [], []
    for repeat in range(args.repeats):
        api, raw = raw_llama(model, args.n_ctx)
        apis.append(api)
        raws.append(raw)
        last = repeat == args.repeats - 1
        tuis.append(hearth_tui(model, args.n_ctx, args.idle_seconds if last else 0.0))
        print(f"run {repeat + 1}: tokens/s raw chat API {api['tokens_per_s']:.1f}, raw token loop "
              f"{raw['tokens_per_s']:.1f}, hearth TUI {tuis[-1]['tokens_per_s']:.1f}")
    api, raw, tui = (_median(runs) for runs in (apis, raws, tuis))
    tui["idle_cpu_s"] = tuis[-1]["idle_cpu_s"]
    n = tui["tokens"]
    print(f"\nmedians of {args.repeats} runs:")

    def cols(key: str, fmt: str) -> list[str]:
        return [format(d[key], fmt) for d in (api, raw, tui)]

    rows = [
        ("reply tokens", cols("tokens", ".0f")),
        ("time to first token (s)", cols("ttft_s", ".3f")),
        ("token generation (tokens/s)", cols("tokens_per_s", ".1f")),
        ("process CPU during reply (s)", cols("cpu_s", ".2f")),
        ("CPU per token (ms)", [f"{1000 * d['cpu_s'] / d['tokens']:.2f}" for d in (api, raw, tui)]),
        ("bytes to terminal per token", ["-", "-", f"{tui['bytes'] / n:.1f}"]),
    ]
    print(f"{'figure':30} {'raw chat API':>13} {'raw token loop':>15} {'hearth TUI':>11}")
    for name, (a, b, c) in rows:
        print(f"{name:30} {a:>13} {b:>15} {c:>11}")
    print()
    for label, base in (("raw token loop", raw), ("raw chat API", api)):
        ratio = tui["tokens_per_s"] / base["tokens_per_s"]
        print(f"streaming efficiency vs {label + ':':16} {ratio:.3f}  (TUI tokens/s / raw tokens/s; target >= 0.97)")
    extra_cpu_ms = 1000 * (tui["cpu_s"] / n - raw["cpu_s"] / raw["tokens"])
    print(f"hearth CPU per token beyond the raw token loop: {extra_cpu_ms:.2f} ms")
    print(f"start-up, launch to first frame with usable prompt:  {tui['first_frame_s']:.3f} s (target < 0.8 s)")
    idle_pct = 100 * tui["idle_cpu_s"] / args.idle_seconds
    print(f"idle CPU over {args.idle_seconds:.0f} s after the reply:            {tui['idle_cpu_s']:.3f} s "
          f"= {idle_pct:.2f} % of one core (target < 1 %)")
    print(f"hearth RSS after the reply:                          {tui['rss_bytes'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

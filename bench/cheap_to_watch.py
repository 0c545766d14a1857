"""What the UI costs on a small machine (issue: cheap to watch), in one run, in a real 80x24 pty,
on the real SmolLM2 GGUF.

Figures, each printed with its raw numbers:
1. bytes written to the terminal per streamed token (600-token reply);
2. hearth process CPU per streamed token beyond the raw llama-cpp-python token loop's own;
3. reply tokens/s in the TUI / raw tokens/s, same settings (alternating runs, medians);
4. idle CPU over 30 s on the chat screen after a reply;
5. time to first token on turn 10 / turn 1, same new-message length;
6. time to first token after a restart on a ~2,000-token chat / warm (the same chat before the
   restart), with the saved KV state; the cold figure (no saved state) is printed beside it;
7. process RSS beyond the model's own memory: hearth after a reply minus a plain Python process
   that loaded the same model at the same n_ctx with llama-cpp-python and generated the same reply.

Run: .venv/bin/python -m bench.cheap_to_watch [--repeats 3] [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import tui_vs_raw
from bench.ptyrun import PtyProcess
from engine.models.starter import ensure_starter_model

THREADS = tui_vs_raw.THREADS
REPLY_LOG = tui_vs_raw.REPLY_LOG
# Turn messages of the same length in tokens (same words, another number).
TURN = "Give me tip number {n:02d} for keeping a small garden healthy, in one sentence."
LONG_TURN = "Write a detailed essay, part {n}, about the history of lighthouses and their keepers."


class Hearth:
    """hearth in a pty with its own XDG directories (kept across restarts of the process)."""

    def __init__(self, model: Path, home: str, *flags: str) -> None:
        self.env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            self.env[name] = f"{home}/{name.lower()}"
        self.log = Path(self.env["XDG_STATE_HOME"]) / "hearth" / "log" / "hearth.log"
        self.argv = [str(Path(sys.executable).with_name("hearth")), "--model", str(model),
                     "--temperature", "0", "--seed", "1", "--threads", str(THREADS), *flags]
        self.tui: PtyProcess | None = None

    def start(self) -> None:
        self.tui = PtyProcess(self.argv, self.env)
        self.tui.wait_for(b"Enter sends")
        self.wait_log("loaded in", self.log_count("loaded in") + 1)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def log_count(self, needle: str) -> int:
        return self.log_text().count(needle)

    def wait_log(self, needle: str, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.log_count(needle) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} did not appear {count} times in the log")
            time.sleep(0.02)

    def send(self, text: str) -> re.Match:
        """Type a message, wait for its reply; the reply's log line (tokens, TTFT, tokens/s)."""
        before = len(REPLY_LOG.findall(self.log_text()))
        time.sleep(0.3)  # the UI settles between turns, as a person's typing would
        self.tui.write(text.encode() + b"\r")
        deadline = time.monotonic() + 300
        while len(matches := list(REPLY_LOG.finditer(self.log_text()))) <= before:
            if time.monotonic() > deadline:
                raise TimeoutError("reply did not finish")
            time.sleep(0.02)
        return matches[-1]

    def quit(self) -> None:
        self.tui.write(b"\x11")  # ctrl+q: a normal exit, which saves the chat's KV state
        self.tui.proc.wait(60)
        os.close(self.tui.master)
        self.tui = None

    def close(self) -> None:
        if self.tui is not None:
            self.tui.close()


def raw_rss(model: Path, n_ctx: int, max_tokens: int) -> int:
    """Peak-free VmRSS (bytes) of a plain Python process that loaded the model with
    llama-cpp-python and generated ``max_tokens`` tokens: the model's own memory (weights, KV
    cache, compute buffers, the interpreter and the binding)."""
    script = (
        "import sys, llama_cpp\n"
        f"llm = llama_cpp.Llama(model_path={str(model)!r}, n_ctx={n_ctx}, n_threads={THREADS}, verbose=False)\n"
        f"for i, _ in enumerate(llm.create_chat_completion([{{'role': 'user', 'content': {tui_vs_raw.PROMPT!r}}}],"
        f" stream=True, temperature=0, max_tokens={max_tokens})): pass\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) * 1024


def turns(model: Path, home: str) -> tuple[float, float, list[float]]:
    """TTFT of turn 1 and turn 10 (same new-message length, 48-token replies)."""
    hearth = Hearth(model, home, "--n-ctx", "4096", "--max-tokens", "48")
    hearth.start()
    try:
        ttfts = [float(hearth.send(TURN.format(n=n))[5]) for n in range(1, 11)]
    finally:
        hearth.close()
    return ttfts[0], ttfts[-1], ttfts


def restart(model: Path, home: str, state_cache_mib: int) -> dict:
    """Build a ~2,000-token chat, time a turn warm, quit, restart, reopen the chat, time a turn
    of the same length."""
    config = Path(home) / "xdg_config_home" / "hearth" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[model]\nstate_cache_mib = {state_cache_mib}\n")
    hearth = Hearth(model, home, "--n-ctx", "4096", "--max-tokens", "450")
    hearth.start()
    try:
        prompt_tokens = 0
        n = 1
        while prompt_tokens < 1700:
            match = hearth.send(LONG_TURN.format(n=n))
            prompt_tokens = int(match[2]) + int(match[4])
            n += 1
        warm = hearth.send(TURN.format(n=1))
        hearth.quit()
        hearth.start()
        hearth.tui.write(b"\x0f")  # ctrl+o: the chats list; Enter opens the most recent chat
        time.sleep(0.5)
        restored_before = hearth.log_count("restored KV state")
        hearth.tui.write(b"\r")
        if state_cache_mib:
            hearth.wait_log("restored KV state", restored_before + 1)
        else:
            time.sleep(1.0)
        after = hearth.send(TURN.format(n=2))
    finally:
        hearth.close()
    restored = re.findall(r"restored KV state chat-\d+: (\d+) of \d+ saved tokens match .* \(([\d.]+) s\)",
                          hearth.log_text())
    return {"chat_tokens": int(warm[2]), "warm_ttft": float(warm[5]), "warm_evaluated": int(warm[3]),
            "after_tokens": int(after[2]), "after_ttft": float(after[5]), "after_evaluated": int(after[3]),
            "restored": restored[-1] if restored else None}


class KeptFigures:
    """The figures the smooth-streaming issue keeps from this bench: idle CPU, the TTFT ratios
    (turn 10 / turn 1, after a restart / warm) and RSS beyond the model's own, as table rows
    (name, raw figures, result, target)."""

    def __init__(self, rows: list[tuple[str, str, str, str]], notes: list[str]) -> None:
        self.rows = rows
        self.notes = notes

    def print_notes(self) -> None:
        for note in self.notes:
            print(note)


def kept_figures(model: Path, n_ctx: int, idle_run: dict, idle_seconds: float) -> KeptFigures:
    """Measure the kept figures; ``idle_run`` is a tui_vs_raw.hearth_tui result taken with
    ``idle_seconds`` of idling after its reply (its idle CPU and RSS are read from it)."""
    idle_cpu = idle_run["idle_cpu_s"]
    model_rss = raw_rss(model, n_ctx, tui_vs_raw.MAX_TOKENS)
    with tempfile.TemporaryDirectory() as home:
        turn1, turn10, all_turns = turns(model, home)
    with tempfile.TemporaryDirectory() as home:
        saved = restart(model, home, 512)
    with tempfile.TemporaryDirectory() as home:
        cold = restart(model, home, 0)
    extra_rss = idle_run["rss_bytes"] - model_rss
    rows = [
        (f"idle CPU over {idle_seconds:.0f} s (% of a core)",
         f"{idle_cpu:.2f} CPU s", f"{100 * idle_cpu / idle_seconds:.2f}", "< 0.5"),
        ("TTFT turn 10 / turn 1",
         f"{turn10:.3f} s / {turn1:.3f} s", f"{turn10 / turn1:.2f}", "<= 1.3"),
        ("TTFT after restart / warm (saved KV state)",
         f"{saved['after_ttft']:.3f} s / {saved['warm_ttft']:.3f} s",
         f"{saved['after_ttft'] / saved['warm_ttft']:.2f}", "<= 1.5"),
        ("  the same without a saved state (cold)",
         f"{cold['after_ttft']:.3f} s / {cold['warm_ttft']:.3f} s",
         f"{cold['after_ttft'] / cold['warm_ttft']:.2f}", "-"),
        ("RSS beyond the model's own (MiB)",
         f"{idle_run['rss_bytes'] / 2**20:.0f} - {model_rss / 2**20:.0f} MiB", f"{extra_rss / 2**20:.1f}",
         "<= 60"),
    ]
    notes = [
        f"\nturn TTFTs (s): {' '.join(f'{t:.3f}' for t in all_turns)}",
        f"restart: chat of {saved['chat_tokens']} prompt tokens; after restart the prompt was "
        f"{saved['after_tokens']} tokens, {saved['after_evaluated']} evaluated (cold: "
        f"{cold['after_evaluated']} evaluated); restore on opening the chat: "
        f"{saved['restored'][0] if saved['restored'] else '-'} tokens in "
        f"{saved['restored'][1] if saved['restored'] else '-'} s",
    ]
    return KeptFigures(rows, notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    model = ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    n_ctx = 2048
    print(f"model {model.name}, {THREADS} threads, temperature 0, terminal 80x24 (pty)\n")

    raws, tuis = [], []
    for repeat in range(args.repeats):
        raws.append(tui_vs_raw.raw_llama(model, n_ctx)[1])
        last = repeat == args.repeats - 1
        tuis.append(tui_vs_raw.hearth_tui(model, n_ctx, args.idle_seconds if last else 0.0))
        print(f"run {repeat + 1}: raw token loop {raws[-1]['tokens_per_s']:.1f} tokens/s, "
              f"{raws[-1]['cpu_s']:.2f} CPU s; hearth TUI {tuis[-1]['tokens_per_s']:.1f} tokens/s, "
              f"{tuis[-1]['cpu_s']:.2f} CPU s, {tuis[-1]['bytes']} bytes for {tuis[-1]['tokens']} tokens")
    raw = {k: statistics.median(r[k] for r in raws) for k in raws[0]}
    tui = {k: statistics.median(t[k] for t in tuis) for k in tuis[0]}
    kept = kept_figures(model, n_ctx, tuis[-1], args.idle_seconds)
    n = tui["tokens"]
    bytes_per_token = tui["bytes"] / n
    extra_cpu_ms = 1000 * (tui["cpu_s"] / n - raw["cpu_s"] / raw["tokens"])
    ratio = tui["tokens_per_s"] / raw["tokens_per_s"]
    print(f"\nmedians of {args.repeats} alternating runs (600-token reply, n_ctx {n_ctx}):")
    rows = [
        ("bytes to the terminal per streamed token",
         f"{tui['bytes']:.0f} bytes / {n:.0f} tokens", f"{bytes_per_token:.1f}", "<= 150"),
        ("hearth CPU per token beyond the engine (ms)",
         f"{tui['cpu_s']:.2f} s / {n:.0f} - {raw['cpu_s']:.2f} s / {raw['tokens']:.0f}",
         f"{extra_cpu_ms:.2f}", "<= 1"),
        ("TUI tokens/s / raw tokens/s",
         f"{tui['tokens_per_s']:.1f} / {raw['tokens_per_s']:.1f}", f"{ratio:.3f}", ">= 0.98"),
    ] + kept.rows
    print(f"{'figure':46} {'raw figures':36} {'result':>8} {'target':>8}")
    for name, raw_figures, result, target in rows:
        print(f"{name:46} {raw_figures:36} {result:>8} {target:>8}")
    kept.print_notes()


if __name__ == "__main__":
    main()

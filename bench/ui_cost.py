"""What drawing a streaming reply costs the UI, without the model: hearth's conversation widgets
and status bar in a real 80x24 pty, given 600 tokens at a Pi-class 16 a second (words, line and
paragraph breaks, some words in two tokens: tests/stream_app.py's tokens) the way the chat screen
gives them (the reply's ``write`` and the status bar's live figures per batch; ``--rate 90
--per-update 6`` is the chat screen at this machine's full speed: 15 updates a second), after
``--turns`` earlier exchanges with Markdown replies (a list, a code block, a table:
bench.smooth_stream's). Printed: the CPU time of the UI thread and of the whole process (writer and
input threads too) per token, and the bytes written to the terminal.

Without llama.cpp there is no generation to take CPU from, so these figures hold still from run to
run where bench.smooth_stream's tokens/s ratio moves with this VM's speed: good for comparing two
versions of the drawing code in one run, alternating (``--against REV`` checks REV out into a
temporary git worktree and runs the same app from there, given this checkout's tokens).

Run: .venv/bin/python -m bench.ui_cost [--turns 5] [--rounds 3] [--against REV] [--rate 16] [--per-update 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKENS = 600
RATE = 16.0
"""Tokens a second: a Pi-class rate (the issue: 10-20)."""


def run_app(repo: str, turns: int, out: str) -> None:
    """The app, in the pty (argv: --app REPO TURNS OUT): reads the stream to give from ``out``
    (JSON: tokens, old_reply, rate, per_update) and writes its figures there."""
    sys.path.insert(0, repo)
    from textual.app import App, ComposeResult

    from engine.chat.backend import ModelInfo, TokenEvent
    from tui.widgets.conversation import Conversation, ReplyView, UserMessage
    from tui.widgets.status_bar import StatusBar

    given = json.loads(Path(out).read_text())
    rate, per_update = given["rate"], given["per_update"]

    class Streaming(App[None]):
        def get_driver_class(self):  # type: ignore[no-untyped-def]
            try:  # hearth's own driver, where the revision has it
                from tui.input_driver import QuietLinuxDriver
            except ImportError:
                return super().get_driver_class()
            return QuietLinuxDriver

        def get_default_screen(self):  # type: ignore[no-untyped-def]
            try:  # the chat screen's terminal scrolling, where the revision has it
                from tui.widgets.terminal_scroll import TerminalScrollScreen
            except ImportError:
                return super().get_default_screen()

            class ChatLike(TerminalScrollScreen):
                SCROLLED_BY_TERMINAL = Conversation

            return ChatLike(id="_default")

        def compose(self) -> ComposeResult:
            yield Conversation()
            yield StatusBar()

        async def on_mount(self) -> None:
            conversation = self.query_one(Conversation)
            for n in range(turns):
                await conversation.add(UserMessage(f"Question {n}"), ReplyView(given["old_reply"].format(n=n)))
            conversation.anchor()
            self.set_timer(0.5, self.ask)  # the earlier exchanges laid out first, as in a chat

        async def ask(self) -> None:
            conversation = self.query_one(Conversation)
            self.reply = ReplyView("", "streaming")
            try:  # as the chat screen adds a reply about to stream
                await conversation.add(UserMessage("go"), self.reply, streaming=True)
            except TypeError:  # a revision from before messages were set aside while it streams
                await conversation.add(UserMessage("go"), self.reply)
            conversation.anchor()
            await self.reply.start_stream()
            self.bar = self.query_one(StatusBar)
            self.bar.set_model(ModelInfo(name="SmolLM2-135M-Instruct", quantization="Q4_1", n_ctx=2048), "ready")
            self.tokens = list(given["tokens"])
            self.set_timer(1.0, self.start)

        def start(self) -> None:
            self.ui, self.process = time.thread_time(), time.process_time()
            self.set_interval(per_update / rate, self.next_batch)

        def next_batch(self) -> None:
            if not self.tokens:
                Path(out).write_text(json.dumps({"ui_s": time.thread_time() - self.ui,
                                                 "process_s": time.process_time() - self.process}))
                self.exit()
                return
            batch, self.tokens = self.tokens[:per_update], self.tokens[per_update:]
            self.reply.write("".join(batch))
            n = TOKENS - len(self.tokens)
            self.bar.set_live_stats(TokenEvent(n_prompt_tokens=45, n_generated=n, ttft_s=0.2,
                                               elapsed_s=0.2 + n / rate))

    Streaming().run()


def measure(repo: str, turns: int, rate: float, per_update: int) -> dict:
    """One run of the app from ``repo`` in a pty, given this checkout's tokens and earlier reply
    (the same text whatever revision draws it), ``per_update`` tokens per write at ``rate``
    tokens a second: CPU ms per token (UI thread, process), bytes."""
    from bench.ptyrun import PtyProcess
    from bench.smooth_stream import OLD_REPLY
    from tests.stream_app import TOKENS as STREAM_TOKENS

    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/figures.json"
        Path(out).write_text(json.dumps({"tokens": STREAM_TOKENS[:TOKENS], "old_reply": OLD_REPLY,
                                         "rate": rate, "per_update": per_update}))
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "PYTHONPATH": repo}
        # (this file by its path: the revision compared with may not have it)
        pty = PtyProcess([sys.executable, __file__, "--app", repo, str(turns), out], env)
        pty.proc.wait(300)
        time.sleep(0.2)
        figures = json.loads(Path(out).read_text())
        pty.close()
    return {"ui_ms": 1000 * figures["ui_s"] / TOKENS, "process_ms": 1000 * figures["process_s"] / TOKENS,
            "bytes": pty.bytes_out}


def main() -> None:
    if sys.argv[1:2] == ["--app"]:
        run_app(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5, help="earlier exchanges mounted (also 0 is run)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each version, alternating")
    parser.add_argument("--against", help="a git revision to compare with, side by side")
    parser.add_argument("--rate", type=float, default=RATE, help="tokens a second (default: a Pi-class 16)")
    parser.add_argument("--per-update", type=int, default=1,
                        help="tokens per write to the reply (the chat screen batches 6 at 90 tokens/s: "
                             "its 15 updates a second)")
    args = parser.parse_args()
    versions = {"this checkout": str(REPO)}
    worktree = None
    if args.against:
        worktree = tempfile.mkdtemp(prefix="hearth-ui-cost-")
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", worktree, args.against],
                       check=True)
        versions = {args.against: worktree, **versions}
    try:
        print(f"{TOKENS} tokens at {args.rate:.0f}/s, {args.per_update} per update, in an 80x24 pty; "
              f"CPU per token, medians of {args.rounds}")
        print(f"{'earlier exchanges':18} {'version':16} {'UI thread (ms)':>15} {'process (ms)':>13} {'bytes':>8}")
        for turns in sorted({0, args.turns}):
            runs: dict[str, list[dict]] = {name: [] for name in versions}
            for _ in range(args.rounds):
                for name, repo in versions.items():
                    runs[name].append(measure(repo, turns, args.rate, args.per_update))
            for name, figures in runs.items():
                ui = statistics.median(f["ui_ms"] for f in figures)
                process = statistics.median(f["process_ms"] for f in figures)
                written = statistics.median(f["bytes"] for f in figures)
                print(f"{turns:<18} {name[:16]:16} {ui:15.3f} {process:13.3f} {written:8.0f}")
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", worktree], check=False)


if __name__ == "__main__":
    main()

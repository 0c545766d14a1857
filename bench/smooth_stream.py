"""How smoothly a reply streams, and what drawing it costs (issue: smooth and cheap), in one run,
in a real 80x24 pty, default settings, on the real SmolLM2 GGUF.

What the user sees is read from the terminal itself: everything hearth writes to the pty is fed
to a terminal emulator (pyte), and an *update of the reply* is a moment the conversation area of
the emulated screen changed (writes closer than 5 ms apart are one update). The streaming window
runs from the first token to the last (the reply's log line gives TTFT, tokens and tokens/s).

Two token rates:
- full speed: the starter model with 2 threads on this machine;
- Pi-class: the same hearth process held to a fraction of one core by a cgroup v1 CPU quota
  (10 ms period; ``--pi-cores``, scaled when the raw loop's rate under it falls outside 10-20
  tokens/s: :func:`calibrate`), on one CPU (CpuQuota says why; ``--pi-any-cpu`` lifts that), so
  that generation runs at 10-20 tokens/s *and* the UI thread runs as slowly as it would on a Pi's
  cores, taking its time from generation's (a token rate slowed any other way would leave the
  UI fast).

Figures, each beside its raw numbers: updates of the reply per second while streaming, the longest
gap between updates (and, apart, the time from the logged first token to the first update, which
also holds the work before generation that the logged TTFT leaves out), the UI's CPU per update
and share of a core: the UI thread's (Textual's event loop is the process's main thread;
ThreadCpuSampler) and the CPU the generation thread spent writing the batches it drew itself
(tui.typing_lane, from its log line),
reply tokens/s in the TUI / the raw llama-cpp-python token loop at the same settings (the
Pi-class raw loop runs under the same quota, and beside the same CPU sampler), bytes to the
terminal per second. Beside the ratio, to read it by: the CPU time per token hearth's process spent
beyond its UI (generation, and its helper threads) against the raw loop's process, from
the first token to the last: above 1 when generation itself ran dearer (this VM's speed drifting
between the two replies, or the UI's work disturbing it), where the UI's own CPU is the rows above.

Each side is one process loaded once: hearth's TUI answers the same prompt several times (in a
new chat, or in its own copy of the long chat each time), alternating with the raw loop. That is
also how hearth is used: one process, many replies.

The tokens/s ratio the target is about is taken apart from those replies (:func:`interleaved`):
this VM's speed moves 10-20 % within seconds, and whole replies taken in turn spread over 0.79-1.25
of each other at full speed, far wider than the 2 % the target allows. So hearth's reply and the raw
loop's run at the same time, one process stopped (SIGSTOP) while the other runs, taking turns every
:data:`TURN_S` seconds; a side's rate is its tokens over the time it ran between its first and
last token (each token's time from the raw loop, and from hearth by tui.token_times), so a drift of
the machine falls on both alike. Which side starts alternates from pair to pair. The same with two
raw loops (in the new-chat cases) shows what the method itself gives two equal sides. The ratio of
the whole replies in turn is printed too, with its spread.

Then, in the same run, the cheap-to-watch figures the issue keeps (bench.cheap_to_watch): idle CPU
after a reply, TTFT turn 10 / turn 1 and after a restart / warm, RSS beyond the model's own.

Run (as root for the Pi-class quota): .venv/bin/python -m bench.smooth_stream
[--repeats 8] [--pairs 6] [--pi-repeats 3] [--pi-pairs 3] (--help: all)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import pyte

from bench import tui_vs_raw
from bench.cheap_to_watch import kept_figures
from bench.ptyrun import PtyProcess, hearth_env, hearth_log, wait_ready
from bench.tui_vs_raw import MESSAGES, PROMPT, REPLY_LOG, SEED
from engine.models.starter import ensure_starter_model
from tui.token_times import ENV as TOKEN_TIMES_ENV
from tui.typing_lane import LOG_LINE as LANE_LOG
from tui.widgets.stream_tail import CURSOR

MAX_TOKENS = 600
N_CTX = 2048
ROWS, COLS = 24, 80
CONVERSATION_ROWS = 19
"""The top 19 rows of an 80x24 chat screen hold the conversation (below: the prompt, the status bar
and the footer)."""
MERGE_S = 0.005
SAMPLE_S = 0.1
"""Seconds between two readings of a thread's CPU time (ThreadCpuSampler)."""
CGROUP = Path("/sys/fs/cgroup/cpu")
PI_RATE = (10.0, 20.0)
"""The Pi-class token rate the issue names, tokens/s."""
PI_AIM = 12.5
"""Tokens/s the raw loop is brought to (over :data:`CALIBRATION_TOKENS`) when the quota asked for
gives a rate outside :data:`PI_RATE`: this VM's speed moves from day to day (on 2026-12-02 0.3 of
a core gave 9 tokens/s at turn 51, slower than a Pi)."""
CALIBRATION_TOKENS = 200
TURN_S = 0.5
"""Seconds each side of an interleaved pair runs before the other's turn (:func:`interleaved`):
long enough that a turn holds several tokens at the Pi-class rate (a stop falls inside one token
interval, and is taken out of it), short against the VM's drift of speed."""


class CpuQuota:
    """A cgroup v1 CPU group: its processes get ``cores`` of one core per 10 ms period, and, when
    ``one_cpu``, run on one CPU only (the last this process may use; this process and the threads
    it starts from then on move to the others, so the pty reader does not compete with them).

    Why one CPU: the kernel hands a group's quota to each CPU in slices of
    ``kernel.sched_cfs_bandwidth_slice_us`` (5 ms by default, more than the 3 ms a 0.3-core quota
    gives per period) and takes back what a CPU did not use only when its thread sleeps, after a
    slack timer (Documentation/scheduler/sched-bwc.rst). A UI thread that wakes on the other CPU
    for 0.1 ms can so hold quota the generation thread then waits for: a cost of the quota's
    accounting that a Pi, without a quota, does not have. On one CPU the UI thread and generation
    share a core, as on a Pi whose cores all run llama.cpp.
    """

    def __init__(self, cores: float, one_cpu: bool = True) -> None:
        self.path = CGROUP / f"hearth-bench-{os.getpid()}-{int(cores * 1000)}"
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text("10000")
        self.set(cores)
        self.ours = os.sched_getaffinity(0)
        self.cpu = max(self.ours) if one_cpu and len(self.ours) > 1 else None
        if self.cpu is not None:
            os.sched_setaffinity(0, self.ours - {self.cpu})

    def set(self, cores: float) -> None:
        """Give the group ``cores`` of one core (its processes stay in it)."""
        self.cores = cores
        (self.path / "cpu.cfs_quota_us").write_text(str(int(10000 * cores)))

    def add(self, pid: int) -> None:
        if self.cpu is not None:
            for task in os.listdir(f"/proc/{pid}/task"):  # (threads started later inherit it)
                os.sched_setaffinity(int(task), {self.cpu})
        (self.path / "cgroup.procs").write_text(str(pid))

    def park(self, pid: int) -> None:
        """Move process ``pid`` out of the group, and off its CPU when it has one (back with
        :meth:`add`)."""
        (CGROUP / "cgroup.procs").write_text(str(pid))
        if self.cpu is not None:
            for task in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(task), self.ours - {self.cpu})

    def remove(self) -> None:
        os.sched_setaffinity(0, self.ours)
        self.path.rmdir()


OLD_REPLY = """Here is what I would do, step by step.

1. **Check the logs** with `journalctl -u lighthouse --since today`.
2. Restart the service, then watch it for a minute.
3. If it fails again, look at the configuration file.

```sh
sudo systemctl restart lighthouse
journalctl -fu lighthouse
```

| setting | value |
| --- | --- |
| beam | 12 s |
| range | 18 nm |

The keeper's notes from turn {n} say the lamp was cleaned and the lens turned by hand."""


def raw_messages(history_turns: int) -> list[dict]:
    """What hearth sends after ``history_turns`` exchanges: the system prompt, the newest
    exchanges that fit in n_ctx - max_tokens (hearth drops the oldest), the question. Token
    generation slows as the context fills, so the raw loop must run on the same prompt."""
    history = []
    for n in range(1, history_turns + 1):
        history += [{"role": "user", "content": f"Question {n}: what should I check on the lighthouse today?"},
                    {"role": "assistant", "content": OLD_REPLY.format(n=n)}]
    return [MESSAGES[0], *history, MESSAGES[-1]]


class WatchedFile:
    """A file this benchmark polls while a reply streams (hearth's log, its token times): looked
    at with a stat each time (2 us), read again only when its size changed. Reading the token
    times every 10 ms (up to 140 KB of them by the last pairs) took the benchmark 0.11 ms of CPU
    a look, about 1 % of a core, and only while hearth's side ran: at full speed on the cores
    llama.cpp's threads use, so from hearth's side of the ratio alone (session 24's first run;
    hearth's log, 20 KB searched every 20 ms, about 0.2 %)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._size = -1
        self.text = ""
        """The file's text at the last look that found it changed ("" while it does not exist)."""

    def changed(self) -> bool:
        """Whether the file's size changed since the last look (then :attr:`text` is new)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return False
        if size == self._size:
            return False
        self._size = size
        self.text = self.path.read_text(encoding="utf-8", errors="replace")
        return True


class ThreadCpuSampler:
    """The CPU time the main thread of process ``pid`` has run, and the whole process, read every
    :data:`SAMPLE_S` seconds on a thread of this process (/proc/PID/task/PID/schedstat, in
    nanoseconds; /proc/PID/stat's utime + stime, in clock ticks), to be read at any moment in
    between by linear interpolation (:meth:`at`, :meth:`process_at`).

    The sampling itself takes CPU: at full speed llama.cpp's threads use every core, so whatever
    else runs takes from generation. Sampled every 20 ms, two /proc files a time, it took 1.5 % of
    a core here, in the TUI's runs only; now it reads two files every 100 ms (about 0.4 %), and the
    raw loop's runs have the same sampler beside them, so both sides of the tokens/s ratio bear it.
    """

    def __init__(self, pid: int) -> None:
        self.path = f"/proc/{pid}/task/{pid}/schedstat"
        self.stat_path = f"/proc/{pid}/stat"
        self.tick_s = 1 / os.sysconf("SC_CLK_TCK")
        self.samples: list[tuple[float, float, float]] = []
        """(time.monotonic(), CPU seconds the main thread has run, CPU seconds of the process)."""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            try:
                with open(self.path) as handle:
                    ran_ns = int(handle.read().split()[0])
                with open(self.stat_path) as handle:  # (fields after the command's closing paren)
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, ValueError, IndexError):
                return  # the process has ended
            process_s = (int(fields[11]) + int(fields[12])) * self.tick_s  # utime, stime: proc(5)
            self.samples.append((time.monotonic(), ran_ns / 1e9, process_s))
            self._done.wait(SAMPLE_S)

    def __enter__(self) -> ThreadCpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def at(self, when: float, column: int = 1) -> float:
        """CPU seconds the main thread had run at ``when`` (time.monotonic()).

        Raises:
            ValueError: ``when`` is outside the sampled time.
        """
        for t0, t1 in zip(self.samples, self.samples[1:], strict=False):
            if t0[0] <= when <= t1[0]:
                return t0[column] + (t1[column] - t0[column]) * (when - t0[0]) / (t1[0] - t0[0])
        raise ValueError("outside the sampled time")

    def process_at(self, when: float) -> float:
        """CPU seconds the whole process had used at ``when`` (every thread; 10 ms ticks).

        Raises:
            ValueError: ``when`` is outside the sampled time.
        """
        return self.at(when, column=2)


RAW_LOOP = """
import json, sys, time, llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
llm = llama_cpp.Llama(model_path={model!r}, n_ctx={n_ctx}, n_threads={threads},
                      n_threads_batch={threads}, seed={seed}, verbose=False)
eos = llm.token_eos()
fmt = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], stop_token_ids=[eos],
    eos_token=llm.detokenize([eos], special=True).decode(),
    bos_token=llm.detokenize([llm.token_bos()], special=True).decode())
messages = {messages!r}
while True:
    result = fmt(messages=messages)
    tokens = llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)
    if len(tokens) <= {room} or len(messages) <= 2:
        break
    del messages[1:3]  # the oldest exchange, as hearth drops it
print("prompt", len(tokens), file=sys.stderr)
vocab = llama_cpp.llama_model_get_vocab(llm.model)
for line in sys.stdin:  # a line: one reply of at most that many tokens
    n, first, last, longest, cpu_first, cpu_last, times = 0, None, None, 0.0, 0.0, 0.0, []
    for token in llm.generate(tokens, temp=0.0, top_p=0.95, reset=True):
        if llama_cpp.llama_vocab_is_eog(vocab, token) or n >= int(line):
            break
        llm.detokenize([token])
        n += 1
        now, cpu = time.perf_counter(), time.process_time()
        times.append(time.monotonic())
        longest = max(longest, now - last) if last else 0.0
        first, last = first or now, now
        cpu_first, cpu_last = cpu_first or cpu, cpu
    print(json.dumps([(n - 1) / (last - first), longest, (cpu_last - cpu_first) / (n - 1), times]), flush=True)
"""
"""The bare llama-cpp-python token loop on hearth's chat prompt: one reply per line read, answered
with a JSON line: tokens/s, the longest time between two tokens (s), CPU time per token (s), and
each token's time (``time.monotonic()``, s)."""


class RawLoop:
    """The bare token loop (:data:`RAW_LOOP`) in its own process (inside the quota group when
    there is one), loaded once and asked for one reply at a time, on the chat prompt with the
    history hearth sends (token generation slows as the context fills, so the raw loop must run
    on the same prompt)."""

    def __init__(self, model: Path, threads: int, quota: CpuQuota | None, history_turns: int) -> None:
        script = RAW_LOOP.format(model=str(model), n_ctx=N_CTX, threads=threads, seed=SEED,
                                 messages=raw_messages(history_turns), room=N_CTX - MAX_TOKENS)
        self.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        if quota is not None:
            quota.add(self.proc.pid)
        self._answers: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._asked = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # (list.append is atomic: read by token_times meanwhile)
            self._answers.append(line)

    def reply(self, max_tokens: int = MAX_TOKENS) -> tuple[float, float, float]:
        """One reply: tokens/s, the longest time between two tokens (ms), which no screen can
        beat, and the process's CPU time per token from the first token to the last (ms)."""
        with ThreadCpuSampler(self.proc.pid):  # the same measuring load the TUI's replies bear
            self.begin(max_tokens)
            while self.token_times() is None:
                assert self.proc.poll() is None, "the raw loop ended"
                time.sleep(0.01)
        tokens_per_s, longest_gap_s, cpu_per_token_s, _ = json.loads(self._answers[self._asked - 1])
        return tokens_per_s, 1000 * longest_gap_s, 1000 * cpu_per_token_s

    def prepare(self) -> None:
        """(Nothing to do before a reply: see :meth:`HearthTui.prepare`.)"""

    def begin(self, max_tokens: int = MAX_TOKENS) -> None:
        """Ask for a reply of at most ``max_tokens`` tokens, and return at once."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{max_tokens}\n")
        self.proc.stdin.flush()
        self._asked += 1

    def token_times(self) -> list[float] | None:
        """The last reply's token times (``time.monotonic()``, s), or None while it runs."""
        if len(self._answers) < self._asked:
            return None
        return json.loads(self._answers[self._asked - 1])[3]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def updates_seen(stream: pyte.ByteStream, writes: list[tuple[float, bytes]], start: float,
                 end: float) -> tuple[list[float], int]:
    """Times (monotonic s) in [start, end] at which the emulated screen's conversation rows
    changed, writes under MERGE_S apart merged into one update, feeding ``writes`` to ``stream``
    (a terminal emulator fed everything the TUI wrote before them); and the index of the first
    of them that shows the reply's text (the streaming cursor, tui.widgets.stream_tail.CURSOR,
    drawn after it; 0 when none does: then every update is counted)."""
    screen = stream.listener
    assert isinstance(screen, pyte.Screen)
    before = None
    times: list[float] = []
    first_text = None
    for when, chunk in writes:
        stream.feed(chunk)
        now = tuple(screen.display[:CONVERSATION_ROWS])
        if now != before and start <= when <= end:
            if not times or when - times[-1] > MERGE_S:
                times.append(when)
            if first_text is None and any(CURSOR in row for row in now):
                first_text = len(times) - 1
        before = now
    return times, first_text or 0


def write_history(data_home: str, turns: int, copies: int = 1) -> None:
    """``copies`` chats of ``turns`` exchanges with Markdown replies (a list, code, a table), as a
    long conversation leaves it, in hearth's history database."""
    from engine.chat.history import HistoryStore

    store = HistoryStore(Path(data_home) / "hearth" / "history.sqlite3")
    for copy in range(copies):
        chat = store.create_chat(f"a long chat ({copy + 1})")
        for n in range(1, turns + 1):
            store.add_message(chat, "user", f"Question {n}: what should I check on the lighthouse today?")
            store.add_message(chat, "assistant", OLD_REPLY.format(n=n))
    store.close()


class HearthTui:
    """hearth's TUI in a pty, loaded once, for ``replies`` replies to the same prompt, each in a
    new chat or in its own copy of a chat of ``history_turns`` exchanges (opened from the chats
    screen), and what the terminal showed while each streamed (:meth:`reply`)."""

    def __init__(self, model: Path, threads: int, quota: CpuQuota | None, history_turns: int,
                 replies: int) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        env = hearth_env(self._tmp.name)
        self._times = WatchedFile(Path(self._tmp.name) / "token-times")
        env[TOKEN_TIMES_ENV] = str(self._times.path)  # each reply's token times (tui.token_times)
        self._ended: list[str] = []
        self.history_turns = history_turns
        if history_turns:
            write_history(env["XDG_DATA_HOME"], history_turns, replies)
        argv = [str(Path(sys.executable).with_name("hearth")), "--model", str(model),
                "--temperature", "0", "--seed", str(SEED), "--threads", str(threads),
                "--n-ctx", str(N_CTX), "--max-tokens", str(MAX_TOKENS)]
        self.tui = PtyProcess(argv, env, rows=ROWS, cols=COLS)
        if quota is not None:
            quota.add(self.tui.proc.pid)
        self.replies = 0
        self._stream = pyte.ByteStream(pyte.Screen(COLS, ROWS))
        self._fed = 0
        """Writes of the TUI already fed to the emulated terminal."""
        try:
            wait_ready(self.tui, env, timeout=120)
        except BaseException:
            self.close()  # (the caller never gets an object to close)
            raise
        self.log = hearth_log(env)
        time.sleep(1.0)  # let the UI settle after loading

    @property
    def pid(self) -> int:
        return self.tui.proc.pid

    def prepare(self) -> None:
        """Open the next untouched copy of the long chat (the chats list is newest first: the
        ones replied in so far are at its top), or start a new chat."""
        tui = self.tui
        if not self.history_turns:
            if self.replies:
                tui.write(b"\x0e")  # ctrl+n: a new chat
                time.sleep(1.0)
            return
        since = tui.bytes_out
        tui.write(b"\x0f")  # ctrl+o: the chats list; Enter opens the chat under the cursor
        time.sleep(1.0)
        tui.write(b"\x1b[B" * self.replies + b"\r")
        tui.wait_for(f"turn {self.history_turns} say".encode(), timeout=60, since=since)
        time.sleep(1.0)

    def reply(self) -> dict:
        """One reply, and what the terminal showed while it streamed: the figures of the table."""
        tui = self.tui
        self.prepare()
        log = WatchedFile(self.log)
        log.changed()
        done = len(REPLY_LOG.findall(log.text))
        with ThreadCpuSampler(tui.proc.pid) as sampler:  # (Textual's event loop: the main thread)
            sent = time.monotonic()
            tui.write(PROMPT.encode() + b"\r")
            deadline = time.monotonic() + 600
            matches = []
            while len(matches) <= done:
                assert time.monotonic() < deadline, "reply did not finish"
                time.sleep(0.02)
                if log.changed():
                    matches = REPLY_LOG.findall(log.text)
            time.sleep(1.0)
        self.replies += 1
        lanes = LANE_LOG.findall(self.log.read_text())  # (none from a driver without the lane)
        lane_batches, batches, lane_ms, lane_wraps = lanes[done] if len(lanes) > done else ("0", "0", "0", "0")
        lane_cpu = float(lane_ms) / 1000
        with tui._lock:
            writes = tui.writes[self._fed:]
            self._fed = len(tui.writes)
        match = matches[done]
        tokens, ttft, tps = int(match[3]), float(match[4]), float(match[5])
        start = sent + ttft
        end = start + (tokens - 1) / tps
        times, first_text = updates_seen(self._stream, writes, start, end)
        # the first interval runs from the logged first token, whose TTFT counts from the start of
        # generation and leaves out the work before it (fitting the chat into n_ctx, saving the
        # message): it is reported on its own, to the first update that shows the reply's text;
        # the gaps are those between updates from that one on (an update before it is the new
        # messages' layout, drawn before the first token when that work is slow: its gap to the
        # first text is not a gap while tokens arrive, and was counted as one until session 13)
        first_ms = 1000 * (times[first_text] - start)
        times = times[first_text:]
        gaps = [b - a for a, b in zip(times, [*times[1:], end], strict=True)]
        worst = sorted(range(len(gaps)), key=gaps.__getitem__)[-3:][::-1]
        window = end - start
        ui_thread_cpu = sampler.at(end) - sampler.at(start)
        ui_cpu = ui_thread_cpu + lane_cpu  # (the lane's writes are drawing, on another thread)
        rest_cpu = sampler.process_at(end) - sampler.process_at(start) - ui_cpu
        streamed = sum(len(chunk) for when, chunk in writes if start <= when <= end)
        return {"tokens": tokens, "tokens_per_s": tps, "window_s": window, "updates": len(times),
                "updates_per_s": len(times) / window, "longest_gap_ms": 1000 * max(gaps),
                "median_gap_ms": 1000 * statistics.median(gaps), "first_update_ms": first_ms,
                "worst_gaps": ", ".join(f"{1000 * gaps[i]:.0f} ms at {times[i] - start:.1f} s"
                                        for i in worst),
                "ui_cpu_s": ui_cpu, "ui_thread_cpu_s": ui_thread_cpu, "lane_cpu_s": lane_cpu,
                "lane_pct": 100 * int(lane_batches) / max(1, int(batches)),
                "lane_wrap_pct": 100 * int(lane_wraps) / max(1, int(batches)),
                "ui_ms_per_update": 1000 * ui_cpu / max(1, len(times)),
                "ui_share_pct": 100 * ui_cpu / window, "bytes_per_s": streamed / window,
                "rest_ms_per_token": 1000 * rest_cpu / max(1, tokens - 1)}

    def begin(self) -> None:
        """Ask for a reply in the chat :meth:`prepare` opened, and return at once."""
        self.tui.write(PROMPT.encode() + b"\r")
        self.replies += 1

    def token_times(self) -> list[float] | None:
        """The last reply's token times (``time.monotonic()``, s; tui.token_times), or None
        while it runs."""
        if self._times.changed():
            self._ended = self._times.text.split("\n")[:-1]  # (a line being written has no newline yet)
        return json.loads(self._ended[self.replies - 1]) if len(self._ended) >= self.replies else None

    def close(self) -> None:
        self.tui.close()
        self._tmp.cleanup()


def calibrate(quota: CpuQuota, raw_loop: RawLoop, idle_pid: int) -> None:
    """When the raw loop's rate under ``quota`` (its first :data:`CALIBRATION_TOKENS` tokens) is
    outside :data:`PI_RATE`, scale the quota to bring it to :data:`PI_AIM` (generation's rate is
    proportional to its share of a core); print what was used. Process ``idle_pid`` is parked
    meanwhile."""
    quota.park(idle_pid)
    rate, _, _ = raw_loop.reply(CALIBRATION_TOKENS)
    asked = quota.cores
    if not PI_RATE[0] <= rate <= PI_RATE[1]:
        quota.set(round(asked * PI_AIM / rate, 3))
        rate, _, _ = raw_loop.reply(CALIBRATION_TOKENS)
    print(f"  quota {quota.cores:.3f} of a core (asked: {asked:.3f}): the raw loop's first "
          f"{CALIBRATION_TOKENS} tokens at {rate:.1f} tokens/s", flush=True)
    quota.add(idle_pid)


class Side(Protocol):
    """One side of an interleaved pair: hearth's TUI or a raw loop (:func:`interleaved`)."""

    pid: int

    def prepare(self) -> None: ...
    def begin(self) -> None: ...
    def token_times(self) -> list[float] | None: ...


def interleaved(first: Side, second: Side) -> tuple[float, float]:
    """One reply from each side at the same time, only one process running at a time: ``first``
    runs while ``second`` is stopped (SIGSTOP), and they take turns every :data:`TURN_S` seconds
    until both have ended (the one left then runs on alone). Both are in the same CPU quota
    group when there is one, so either runs as it would alone.

    Returns:
        Each side's tokens/s while it ran (:func:`rate_while_running`): ``first``'s, ``second``'s.
    """
    first.prepare()
    second.prepare()
    stops: dict[int, list[tuple[float, float]]] = {first.pid: [], second.pid: []}
    os.kill(second.pid, signal.SIGSTOP)
    stopped = {second.pid: time.monotonic()}
    running, waiting = first, second
    try:
        first.begin()
        second.begin()
        deadline = time.monotonic() + 900
        while running.token_times() is None or waiting.token_times() is None:
            assert time.monotonic() < deadline, "the interleaved replies did not end"
            turn_ends = time.monotonic() + TURN_S
            while time.monotonic() < turn_ends and running.token_times() is None:
                time.sleep(0.01)
            if waiting.token_times() is not None:  # (ended before: the other runs on alone)
                continue
            os.kill(running.pid, signal.SIGSTOP)
            stopped[running.pid] = time.monotonic()
            os.kill(waiting.pid, signal.SIGCONT)
            stops[waiting.pid].append((stopped.pop(waiting.pid), time.monotonic()))
            running, waiting = waiting, running
    finally:
        for pid, since in stopped.items():
            os.kill(pid, signal.SIGCONT)
            stops[pid].append((since, time.monotonic()))
    first_times, second_times = first.token_times(), second.token_times()
    assert first_times is not None and second_times is not None
    return (rate_while_running(first_times, stops[first.pid]),
            rate_while_running(second_times, stops[second.pid]))


def rate_while_running(times: list[float], stops: list[tuple[float, float]]) -> float:
    """Tokens/s of a reply whose tokens came at ``times`` (s), counting only the time its process
    ran: each interval between two tokens less the part of it the process was stopped
    (``stops``: from, to, in s; timed just after each signal was sent)."""
    running = 0.0
    for a, b in itertools.pairwise(times):
        running += b - a - sum(max(0.0, min(b, to) - max(a, since)) for since, to in stops)
    return (len(times) - 1) / running


def interleaved_pairs(a: Side, b: Side, pairs: int, quota: CpuQuota | None, label: str) -> list[float]:
    """``pairs`` interleaved pairs of ``a`` and ``b`` (``a`` starting in the even ones), each
    printed; the ratios of ``a``'s tokens/s to ``b``'s."""
    if quota is not None:  # (both in the group, on its CPU)
        quota.add(a.pid)
        quota.add(b.pid)
    ratios = []
    for pair in range(pairs):
        if pair % 2 == 0:
            rate_a, rate_b = interleaved(a, b)
        else:
            rate_b, rate_a = interleaved(b, a)
        ratios.append(rate_a / rate_b)
        print(f"  interleaved {pair + 1} ({label if pair % 2 == 0 else 'raw'} first): "
              f"{label} {rate_a:.1f} tokens/s, raw {rate_b:.1f}: {ratios[-1]:.3f}", flush=True)
    return ratios


def run_rate(label: str, model: Path, threads: int, cores: float | None, repeats: int, pairs: int,
             history_turns: int = 0, one_cpu: bool = True, control_pairs: int = 0) -> None:
    """``repeats`` replies in hearth's TUI and as many of the raw loop, alternating, each side
    one process loaded once, and the table of their medians (while the raw loop generates, the
    idle TUI is moved out of the quota group and off its CPU: CpuQuota.park); then ``pairs``
    interleaved pairs of the same two processes (:func:`interleaved`), and ``control_pairs`` of
    the raw loop and a second one."""
    quota = CpuQuota(cores, one_cpu) if cores else None
    raw_loop = hearth = second_raw = None
    control: list[float] = []
    try:
        raw_loop = RawLoop(model, threads, quota, history_turns)
        hearth = HearthTui(model, threads, quota, history_turns, repeats + pairs)
        if quota is not None:
            calibrate(quota, raw_loop, hearth.tui.proc.pid)
        raws, tuis = [], []
        for repeat in range(repeats):  # alternate, so drift in the machine's speed hits both
            if quota is not None:
                quota.park(hearth.tui.proc.pid)
            raws.append(raw_loop.reply())
            if quota is not None:
                quota.add(hearth.tui.proc.pid)
            tuis.append(hearth.reply())
            t = tuis[-1]
            print(f"  run {repeat + 1}: raw {raws[-1][0]:.1f} tokens/s (longest time between tokens "
                  f"{raws[-1][1]:.0f} ms); TUI {t['tokens_per_s']:.1f} tokens/s "
                  f"({t['tokens_per_s'] / raws[-1][0]:.3f} of raw), "
                  f"{t['tokens']} tokens, {t['updates']} updates in {t['window_s']:.1f} s, "
                  f"CPU per token beyond the UI {t['rest_ms_per_token']:.2f} ms (raw "
                  f"{raws[-1][2]:.2f}), "
                  f"longest gap {t['longest_gap_ms']:.0f} ms (first update {t['first_update_ms']:.0f} ms "
                  f"after the logged first token), UI thread {t['ui_thread_cpu_s']:.2f} CPU s, "
                  f"lane {t['lane_cpu_s'] * 1000:.1f} CPU ms ({t['lane_pct']:.0f} % of batches, "
                  f"{t['lane_wrap_pct']:.0f} % going on to the next lines); "
                  f"longest gaps {t['worst_gaps']} into the stream", flush=True)
        together = interleaved_pairs(hearth, raw_loop, pairs, quota, "TUI")
        hearth.close()
        hearth = None
        if control_pairs:
            second_raw = RawLoop(model, threads, quota, history_turns)
            second_raw.reply(CALIBRATION_TOKENS)  # (as the first: its prompt processed once before)
            control = interleaved_pairs(second_raw, raw_loop, control_pairs, quota, "raw 2")
    finally:
        for process in (hearth, raw_loop, second_raw):
            if process is not None:
                process.close()
        if quota is not None:
            quota.remove()
    raw = statistics.median(r[0] for r in raws)
    ratios = [t["tokens_per_s"] / r[0] for t, r in zip(tuis, raws, strict=True)]
    raw_longest = statistics.median(r[1] for r in raws)
    cpu_ratios = [t["rest_ms_per_token"] / r[2] for t, r in zip(tuis, raws, strict=True)]
    tui = {key: statistics.median(t[key] for t in tuis) for key in tuis[0] if key != "worst_gaps"}
    control_row = [("  raw / raw, interleaved (the method)", f"{len(control)} pairs, {min(control):.3f} "
                    f"to {max(control):.3f}", f"{statistics.median(control):.3f}", "~1")] if control else []
    rows = [
        ("reply updates per second while streaming", f"{tui['updates']:.0f} / {tui['window_s']:.1f} s",
         f"{tui['updates_per_s']:.1f}", ">= 10"),
        ("longest gap between updates (ms), median reply", f"median gap {tui['median_gap_ms']:.0f} ms",
         f"{tui['longest_gap_ms']:.0f}", "<= 200"),
        ("  the worst reply's longest gap (ms)", f"of {repeats} replies",
         f"{max(t['longest_gap_ms'] for t in tuis):.0f}", "<= 200"),
        ("  raw loop: longest time between tokens (ms)", "no screen can update faster",
         f"{raw_longest:.0f}", "report"),
        ("  logged first token -> text on screen (ms)", "includes the work before generation",
         f"{tui['first_update_ms']:.0f}", "report"),
        ("UI CPU per update (ms): UI thread + lane", f"{tui['ui_cpu_s']:.2f} s / {tui['updates']:.0f}",
         f"{tui['ui_ms_per_update']:.2f}", "<= 2"),
        ("UI's share of a core (%)", f"{tui['ui_cpu_s']:.2f} s / {tui['window_s']:.1f} s",
         f"{tui['ui_share_pct']:.1f}", "<= 3"),
        ("  of which the lane's writes (ms)", f"{tui['lane_pct']:.0f} % of batches drawn by it "
         f"({tui['lane_wrap_pct']:.0f} % going on to the next lines)",
         f"{1000 * tui['lane_cpu_s']:.1f}", "report"),
        ("TUI tokens/s / raw tokens/s, interleaved", f"{pairs} pairs, {min(together):.3f} to "
         f"{max(together):.3f}", f"{statistics.median(together):.3f}", ">= 0.98"),
        *control_row,
        ("  the same, whole replies in turn", f"{repeats} pairs, {min(ratios):.3f} to {max(ratios):.3f}",
         f"{statistics.median(ratios):.3f}", "report"),
        ("  median tokens/s: TUI / raw", f"{tui['tokens_per_s']:.1f} / {raw:.1f}",
         f"{tui['tokens_per_s'] / raw:.3f}", "report"),
        ("  CPU/token beyond the UI / raw's (ms)",
         f"{tui['rest_ms_per_token']:.2f} / {statistics.median(r[2] for r in raws):.2f}",
         f"{statistics.median(cpu_ratios):.3f}", "report"),
        ("bytes to the terminal per second", f"{tui['bytes_per_s'] * tui['window_s']:.0f} B / "
         f"{tui['window_s']:.1f} s", f"{tui['bytes_per_s'] / 1000:.1f} KB", "report"),
    ]
    held = f", the process held to {quota.cores:.3f} of a core" if quota is not None else ""
    print(f"\n{label}: medians of {repeats} alternating replies, {tui['tokens']:.0f}-token reply{held}")
    print(f"{'figure':42} {'raw figures':30} {'result':>9} {'target':>8}")
    for name, raw_figures, result, target in rows:
        print(f"{name:42} {raw_figures:30} {result:>9} {target:>8}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8,
                        help="replies of each side at full speed (pairs, alternating)")
    parser.add_argument("--pairs", type=int, default=6,
                        help="interleaved pairs of the TUI and the raw loop at full speed (tokens/s ratio)")
    parser.add_argument("--control-pairs", type=int, default=6,
                        help="interleaved pairs of two raw loops at full speed, new chat (the method's spread)")
    parser.add_argument("--pi-repeats", type=int, default=3,
                        help="replies of each side at the Pi-class rate (35-45 s each)")
    parser.add_argument("--pi-pairs", type=int, default=3,
                        help="interleaved pairs at the Pi-class rate (70-90 s each)")
    parser.add_argument("--pi-control-pairs", type=int, default=2,
                        help="interleaved pairs of two raw loops at the Pi-class rate, new chat")
    parser.add_argument("--pi-cores", type=float, default=0.3,
                        help="the Pi-class CPU quota, in cores (0 skips the Pi-class rate)")
    parser.add_argument("--pi-any-cpu", action="store_true",
                        help="let the Pi-class process run on any CPU (see CpuQuota)")
    parser.add_argument("--history-turns", type=int, default=50,
                        help="also measure a reply after this many earlier exchanges (0 skips it)")
    parser.add_argument("--idle-seconds", type=float, default=30.0,
                        help="idle time for the kept cheap-to-watch figures (0 skips them)")
    args = parser.parse_args()
    model = ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    print(f"model {model.name}, n_ctx {N_CTX}, temperature 0, max {MAX_TOKENS} tokens, "
          f"terminal {COLS}x{ROWS} (pty), default ui settings\n")
    for turns in sorted({0, args.history_turns}):
        chat = f"turn {turns + 1} of a chat" if turns else "a new chat"
        print(f"full speed, 2 threads, {chat}:")
        run_rate(f"full speed, {chat}", model, 2, None, args.repeats, args.pairs, turns,
                 control_pairs=0 if turns else args.control_pairs)
        if args.pi_cores:
            where = "any CPU" if args.pi_any_cpu else "one CPU"
            print(f"Pi-class, 1 thread, the process held to {args.pi_cores:.2f} of a core on {where} "
                  f"(or the share that gives {PI_RATE[0]:.0f}-{PI_RATE[1]:.0f} tokens/s), {chat}:")
            run_rate(f"Pi-class, {chat}", model, 1, args.pi_cores, args.pi_repeats, args.pi_pairs, turns,
                     not args.pi_any_cpu, control_pairs=0 if turns else args.pi_control_pairs)
    if args.idle_seconds:
        print("the cheap-to-watch figures this issue keeps (bench.cheap_to_watch, full speed):")
        idle_run = tui_vs_raw.hearth_tui(model, N_CTX, args.idle_seconds)
        kept = kept_figures(model, N_CTX, idle_run, args.idle_seconds)
        print(f"{'figure':46} {'raw figures':36} {'result':>8} {'target':>8}")
        for name, raw_figures, result, target in kept.rows:
            print(f"{name:46} {raw_figures:36} {result:>8} {target:>8}")
        kept.print_notes()


if __name__ == "__main__":
    main()

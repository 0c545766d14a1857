"""hearth in a real terminal (tmux, 80x24): what a user sees, nothing else."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tui.typing_lane import LOG_LINE as LANE_LOG

pytestmark = pytest.mark.terminal
REPO = Path(__file__).resolve().parents[1]
LLAMA_LOG_MARKERS = ("llama_", "load_tensors", "ggml", "print_info", "llm_load", "AVX", "Model metadata")


class Tmux:
    def __init__(self, tmp_path: Path) -> None:
        self.socket = f"hearth-{uuid.uuid4().hex[:8]}"
        self.env = {name: str(tmp_path / name.lower()) for name in
                    ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=True).stdout

    def start(self, command: list[str], term: str = "xterm-256color") -> None:
        env_args = [f"-e{k}={v}" for k, v in self.env.items()]
        shell = f"cd {shlex.quote(str(REPO))} && TERM={term} {shlex.join(command)}; sleep 60"
        self.tmux("new-session", "-d", "-x", "80", "-y", "24", *env_args, shell)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on:\n{self.screen()}")

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-l", text)

    def key(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def term(tmp_path: Path):
    tmux = Tmux(tmp_path)
    yield tmux
    tmux.close()


def hearth(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui.cli", *args]


@pytest.mark.model
@pytest.mark.parametrize("term_name", ["xterm-256color", "linux"])
def test_answer_on_screen_and_no_llama_log(term: Tmux, gguf_path: Path, term_name: str) -> None:
    term.start(hearth("--model", str(gguf_path), "--temperature", "0"), term=term_name)
    term.wait_for("Ask anything")
    term.type("What is the capital of France? Answer in one word.")
    term.key("Enter")
    screen = term.wait_for("Paris")
    term.wait_for("tok/s")  # the reply ended and the status bar has its figures
    screen = term.screen()
    assert "What is the capital of France?" in screen
    for marker in LLAMA_LOG_MARKERS:
        assert marker not in screen, f"{marker!r} reached the terminal:\n{screen}"
    log = Path(term.env["XDG_STATE_HOME"]) / "hearth" / "log" / "hearth.log"
    assert "load_tensors" in log.read_text()  # it went to the log file instead


def _hearth_pid(term: Tmux) -> int:
    shell = int(term.tmux("display-message", "-p", "#{pane_pid}").strip())
    return int(subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True).stdout.split()[0])


def _wait_exit(pid: int, seconds: float) -> None:
    """Wait until process ``pid`` has exited (gone, or a zombie), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
                return
        except FileNotFoundError:  # (gone, also between a check that it exists and the read)
            return
        assert time.monotonic() < deadline, "hearth did not exit"
        time.sleep(0.05)


@pytest.mark.model
def test_the_generation_thread_draws_batches_and_nothing_after_quitting(term: Tmux, gguf_path: Path) -> None:
    """Batches of a reply that only lengthen its last line are written to the terminal by the
    generation thread itself (tui.typing_lane). Quitting in
    the middle of a reply, nothing is drawn after hearth has given the terminal back: the screen
    it leaves is the shell's, blank."""
    term.start(hearth("--model", str(gguf_path), "--temperature", "0", "--max-tokens", "300"))
    term.wait_for("Ask anything")
    pid = _hearth_pid(term)
    log = Path(term.env["XDG_STATE_HOME"]) / "hearth" / "log" / "hearth.log"
    term.type("Write a long story about a lighthouse keeper.")
    term.key("Enter")
    deadline = time.monotonic() + 120
    while not (lane := LANE_LOG.search(log.read_text())):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    drawn, batches = int(lane[1]), int(lane[2])
    # (at this machine's full speed a batch is 6-8 tokens, and one in two or three wraps: the UI
    # draws those; at a Pi-class rate, a token a batch, most go this way: bench/smooth_stream.py)
    assert batches > 20 and drawn > batches / 4, lane[0]
    term.type("Tell it again, longer.")
    term.key("Enter")
    time.sleep(1.0)  # streaming (300 tokens take 2-5 s here)
    assert len(LANE_LOG.findall(log.read_text())) == 1, "the second reply ended before the quit key"
    term.key("C-q")
    _wait_exit(pid, 20)
    time.sleep(0.5)
    assert term.screen().strip() == ""


def _wake_ups(pid: int) -> int:
    """Voluntary context switches of all threads of process ``pid`` so far (each a wake-up after
    a wait), from /proc (proc(5))."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


@pytest.mark.model
def test_input_thread_sleeps_while_idle_and_escape_and_quit_still_work(term: Tmux, gguf_path: Path) -> None:
    """Idle, hearth's threads do not wake: the input thread waits for keys (Textual's wakes ten
    times a second: tui.input_driver); a lone Escape still arrives (it stops a streaming reply), and ctrl+q
    still ends the process at once (the thread is woken to exit)."""
    term.start(hearth("--model", str(gguf_path), "--temperature", "0", "--max-tokens", "400"))
    term.wait_for("Ask anything")
    shell = int(term.tmux("display-message", "-p", "#{pane_pid}").strip())
    pid = int(subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True).stdout.split()[0])
    time.sleep(1.0)
    before = _wake_ups(pid)
    time.sleep(2.0)
    assert _wake_ups(pid) - before <= 3  # with Textual's own input loop: about 20
    term.type("Write a long story about a lighthouse keeper.")
    term.key("Enter")
    term.wait_for("tok/s")  # streaming: the live figures are up
    term.key("Escape")
    term.wait_for("stopped")
    time.sleep(3.0)  # idle again, then the quit key
    term.key("C-q")
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "hearth did not exit after ctrl+q"
        time.sleep(0.05)


def _state(pid: int) -> str:
    """Process ``pid``'s state letter (proc(5): R, S, T stopped, Z ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _until(check, seconds: float, what: str) -> None:  # noqa: ANN001 - a callable returning a bool
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.model
def test_stopped_and_continued_or_suspended_and_resumed_it_chats_on(term: Tmux, gguf_path: Path) -> None:
    """SIGSTOP then SIGCONT (``kill -STOP``, a debugger, cpulimit's throttling) leaves hearth as
    it was: Textual's driver started application mode again on every SIGCONT, another input
    thread each time (tui.input_driver). A suspend (SIGTSTP) gives the terminal back, and SIGCONT
    (``fg``) takes it again with the screen as it was and the chat going on: it ended in a
    traceback, the input thread's wake pipe closed by the suspend."""
    term.start(hearth("--model", str(gguf_path), "--temperature", "0", "--max-tokens", "40"))
    term.wait_for("Ask anything")
    pid = _hearth_pid(term)
    term.type("Say hello in three words.")
    term.key("Enter")
    term.wait_for("tok/s")
    threads = len(os.listdir(f"/proc/{pid}/task"))
    for _ in range(3):
        os.kill(pid, signal.SIGSTOP)
        _until(lambda: _state(pid) == "T", 10, "not stopped")
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.3)
    assert len(os.listdir(f"/proc/{pid}/task")) == threads  # (was 2 more after each)
    shown = term.screen()
    os.kill(pid, signal.SIGTSTP)
    _until(lambda: _state(pid) == "T", 10, "not suspended")
    _until(lambda: "Ask anything" not in term.screen(), 10, "the terminal was not given back")
    os.kill(pid, signal.SIGCONT)
    _until(lambda: term.screen() == shown, 10, f"not the same screen after resuming:\n{term.screen()}")
    term.type("Now say goodbye.")
    term.key("Enter")
    term.wait_for("Now say goodbye.")
    log = Path(term.env["XDG_STATE_HOME"]) / "hearth" / "log" / "hearth.log"
    _until(lambda: log.read_text().count("reply stop") + log.read_text().count("reply length") == 2, 60,
           "the second reply did not end")
    assert "Traceback" not in term.screen() and "Traceback" not in log.read_text()
    term.key("C-q")
    _wait_exit(pid, 20)


def test_escape_sequences_in_model_output_stay_inert(term: Tmux) -> None:
    hostile = r"Look: \x1b]0;PWNED-TITLE\x07 and \x1b]52;c;ZXZpbA==\x07 and \x1b[2J\x1b[31mred"
    term.start([sys.executable, "-m", "tests.scripted_app", hostile])
    term.tmux("set-option", "-g", "set-clipboard", "on")  # let OSC 52 reach tmux's buffers
    term.wait_for("Ask anything")
    term.type("show me")
    term.key("Enter")
    screen = term.wait_for("red")
    assert "\u241b]0;PWNED-TITLE" in screen  # shown as text, the ESC as a visible stand-in
    assert "show me" in screen  # the screen was not cleared by ESC[2J
    title = term.tmux("display-message", "-p", "#{pane_title}")
    assert "PWNED" not in title
    buffers = subprocess.run(["tmux", "-L", term.socket, "list-buffers"], capture_output=True, text=True).stdout
    assert "evil" not in buffers and "ZXZpbA" not in buffers  # no OSC 52 clipboard write


NATIVE_AUDIO_MARKERS = ("ALSA lib", "Expression '", "PortAudio", "pa_linux_alsa", "ctranslate2", "[W:onnxruntime")


@pytest.mark.model
@pytest.mark.voice
def test_push_to_talk_in_a_real_terminal_shows_nothing_native(term: Tmux, gguf_path: Path, audio, speech_model,
                                                               tmp_path: Path) -> None:
    config = tmp_path / "voice.toml"
    config.write_text(f'[voice]\nstt_model = "{speech_model}"\ninput_device = "filemic"\nauto_send = true\n'
                      '[chat]\ntemperature = 0.0\n')
    term.env |= {"HEARTH_CONFIG": str(config), "ALSA_CONFIG_PATH": os.environ["ALSA_CONFIG_PATH"]}
    term.start(hearth("--model", str(gguf_path)))
    term.wait_for("Ask anything")
    term.key("C-r")
    screen = term.wait_for("Paris", timeout=120)
    assert "What is the capital of France?" in screen
    for marker in NATIVE_AUDIO_MARKERS:
        assert marker not in screen, f"{marker!r} reached the terminal:\n{screen}"


@pytest.mark.voice
def test_missing_microphone_in_a_real_terminal_is_one_notification(term: Tmux, gguf_path: Path, audio,
                                                                   speech_model, tmp_path: Path) -> None:
    config = tmp_path / "voice.toml"
    config.write_text(f'[voice]\nstt_model = "{speech_model}"\ninput_device = "usb-mic"\n')
    term.env |= {"HEARTH_CONFIG": str(config), "ALSA_CONFIG_PATH": os.environ["ALSA_CONFIG_PATH"]}
    term.start(hearth("--model", str(gguf_path)))
    term.wait_for("Ask anything")
    term.key("F5")
    screen = term.wait_for("usb-mic")
    for marker in NATIVE_AUDIO_MARKERS:
        assert marker not in screen, f"{marker!r} reached the terminal:\n{screen}"


@pytest.mark.parametrize(("toast", "threaded"), [(False, False), (True, False), (False, True), (True, True)])
def test_directly_drawn_reply_equals_a_full_repaint(term: Tmux, tmp_path: Path, toast: bool, threaded: bool) -> None:
    """The streaming tail writes its changed lines straight to the terminal (no Textual frame):
    the screen then is exactly what Textual's own full repaint draws, colours included, and a
    notification over the reply stays whole while text streams beneath it. The status bar's live
    figures, written as the cells that changed, end as its full repaint too. With the words
    coming from a thread (``threaded``), as a reply's tokens do, that thread writes most of them
    itself (those that lengthen the line or wrap it onto the next: tui.typing_lane), between the
    UI's frames and its own writes, and the screen is the full repaint's all the same."""
    count = tmp_path / "drawn"
    drawn, streamed, pauses = _stream_against_repaints(term, count, ["thread"] if threaded else [], toast)
    assert pauses >= 3, drawn
    # of 400 words, all but those that needed a layout were drawn directly (under a notification,
    # the part of the line left of it), and most by writing only the cells they add
    assert drawn["lines"] + drawn["cells"] + drawn["spans"] + drawn["lane"] > 300
    if threaded:  # most by the thread's own write of those cells; the UI's drew the rest
        assert drawn["lane"] > (150 if toast else 250), drawn
        assert drawn["cells"] + drawn["lines"] > 0, drawn
    else:
        assert drawn["cells"] > (150 if toast else 300), drawn
        assert drawn["lane"] == 0, drawn
    # a word that wraps: the cells it changes on both lines (under a notification, whole lines),
    # written by the UI, or by the thread (but into the room's last line, and but the words that
    # come while the UI has one to draw: here every 3 ms, and so a run of them after each)
    assert drawn["spans"] + drawn["lane_wraps"] > (40 if toast else 60), drawn
    if threaded:
        assert drawn["lane_wraps"] > 10, drawn
        # after the frames that grew the reply, the lane was open again before the next word
        assert drawn["reopened"] > 5, drawn
    # the layouts that grew the reply had the terminal move the conversation's lines up
    assert drawn["scrolls"] > 5, drawn
    # the status bar: only its changed cells, nearly every word the UI drew
    assert drawn["status"] > (20 if threaded else 300), drawn
    assert ("A-NOTICE" in streamed) == toast
    if toast:  # tokens ran on under the notification, and none of their cells was written over it
        assert drawn["aimed_under_toast"] > 0, drawn
        assert drawn["over_toast"] == 0, drawn
    term.key("C-l")
    time.sleep(0.5)
    assert term.tmux("capture-pane", "-p", "-e") == streamed
    # scrolling back: the terminal moves the lines down, and the screen is a full repaint's; the
    # same for a message just changed that the terminal then moves (the one at the top)
    scrolls = drawn["scrolls"]
    for keys in (["C-u"] * 4, ["C-k", "C-u", "C-e"]):
        for key in keys:
            count.unlink(missing_ok=True)
            term.key(key)
            moved = _counts_written(count, 10)["scrolls"]
        scrolled = term.tmux("capture-pane", "-p", "-e")
        assert moved >= scrolls + len(keys) - 1, (keys, moved, scrolls)  # (the first is a full repaint)
        scrolls = moved
        term.key("C-l")
        time.sleep(0.5)
        repainted = term.tmux("capture-pane", "-p", "-e")
        assert repainted == scrolled, _differing_lines(-1, scrolled, repainted)
    assert "MARK-1" in scrolled


def test_a_line_the_lane_wrapped_otherwise_than_the_reply_is_drawn_again(term: Tmux, tmp_path: Path) -> None:
    """Should the generation thread's wrapping of a line (tui.typing_lane) ever differ from the
    reply's own (a Textual that wraps otherwise), the reply draws the line again from its text when
    it takes what the thread drew: here the thread wraps ten cells short of the width, and the
    screen is a full repaint's at every pause and at the end all the same."""
    count = tmp_path / "drawn"
    drawn, streamed, pauses = _stream_against_repaints(term, count, ["thread", "miswrap"])
    assert pauses >= 3 and drawn["lane_wraps"] > 10 and drawn["miswrapped"] > 10, drawn
    term.key("C-l")
    time.sleep(0.5)
    assert term.tmux("capture-pane", "-p", "-e") == streamed


def _stream_against_repaints(term: Tmux, count: Path, mode: list[str], toast: bool = False) -> tuple[dict, str, int]:
    """Stream tests/stream_app.py's reply (``mode``: its arguments after the count file; with a
    notification when ``toast``); at each pause after a frame that moved the lines, check the
    screen equals Textual's full repaint and the reply's text is every word so far in order.

    Returns:
        The app's counts at the end, the screen then, and the pauses."""
    term.start([sys.executable, "-m", "tests.stream_app", str(count), *mode])
    term.wait_for("…")
    if toast:
        term.key("C-t")
        term.wait_for("A-NOTICE")
    term.key("C-s")
    pauses = 0
    while True:
        drawn = _counts_written(count, 20)
        count.unlink()
        assert drawn["text_so_far"], drawn  # every word in the reply's text, in order
        time.sleep(0.3)
        streamed = term.tmux("capture-pane", "-p", "-e")
        if drawn["done"]:
            break
        term.key("C-l")
        time.sleep(0.5)
        repainted = term.tmux("capture-pane", "-p", "-e")
        assert repainted == streamed, _differing_lines(pauses, streamed, repainted)
        pauses += 1
        term.key("C-s")
    assert "THE-END" in streamed
    return drawn, streamed, pauses


def _counts_written(count: Path, seconds: float) -> dict:
    """The stream app's counts, once it has written them (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not count.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return json.loads(count.read_text())


def _differing_lines(pause: int, streamed: str, repainted: str) -> str:
    """The lines of two captures of the screen that differ (pause -1: after scrolling back)."""
    lines = [f"line {y}:\n  streamed:  {a!r}\n  repainted: {b!r}"
             for y, (a, b) in enumerate(zip(streamed.splitlines(), repainted.splitlines(), strict=True)) if a != b]
    return f"at pause {pause}, the screen differs from a full repaint:\n" + "\n".join(lines)


async def test_driver_writes_on_flush_from_its_own_thread_and_outlives_a_gone_terminal() -> None:
    """hearth's driver sends output from the thread that draws, when Textual flushes a frame (no
    writer thread in between: tui.input_driver); a terminal that has gone (its reader closed)
    costs no exception, and later output is dropped."""
    import io

    from textual.app import App

    from tui.input_driver import QuietLinuxDriver

    read_end, write_end = os.pipe()
    driver = QuietLinuxDriver(App())
    driver._file = io.TextIOWrapper(io.FileIO(write_end, "w"), encoding="utf-8")
    os.set_blocking(read_end, False)
    try:
        driver.write("\x1b[1;1Hhello")
        with pytest.raises(BlockingIOError):
            os.read(read_end, 100)  # buffered until the frame is flushed
        driver.flush()
        assert os.read(read_end, 100) == b"\x1b[1;1Hhello"
        os.close(read_end)
        driver.write("x" * 10_000)  # more than the stream buffers: written, and refused
        driver.flush()
        driver.write("after")
        driver.flush()
        assert driver._output_lost
    finally:
        driver.close()
        with contextlib.suppress(OSError):  # (what the pipe refused is still buffered)
            driver._file.close()

"""Bad input gets one clear line and loses nothing: numeric flags out of range, input that is not
UTF-8, a reader that leaves the pipe, an unwritable config directory, a 2-hour audio file,
TERM=dumb; remote streams that never end (max_tokens ignored, keep-alive comments only); a server
echoing the API key; KV-state files owner-only. Run as a user runs them (subprocesses) where the
terminal or the interpreter's exit matters."""

from __future__ import annotations

import fcntl
import os
import select
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
import wave
from pathlib import Path

import pytest

from engine.chat.backend import GenerationParams
from engine.chat.remote import RemoteBackend
from engine.config import EndpointSettings
from engine.errors import BackendError
from tests.servers import MisbehavingServer

HEARTH = [sys.executable, "-m", "tui.cli"]
REPO = Path(__file__).resolve().parents[1]


def run(*args: str | bytes, stdin: bytes = b"", env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HEARTH, *args], input=stdin, capture_output=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


def one_line_error(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.decode("utf-8", "replace").strip()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "list", "--ctx", "-100"], "argument --ctx: -100 is outside 64.."),
        (["models", "list", "--ctx", "0"], "argument --ctx: 0 is outside 64.."),
        (["models", "info", "--ctx", "many", "x.gguf"], "'many' is not a whole number"),
        (["voice", "test", "--seconds", "-3"], "argument --seconds: -3 is outside 1..600"),
        (["models", "list", "--ram", "-2G"], "--flag=VALUE"),
        (["models", "list", "--ram=-2G"], "'-2G' is not a size"),
        (["ask", "--n-ctx", "0", "hi"], "model.n_ctx = 0 is outside 64"),
        (["ask", "--threads", "-1", "hi"], "model.n_threads = -1 is outside 0"),
        (["ask", "--max-tokens", "0", "hi"], "chat.max_tokens = 0 is outside 1"),
    ],
)
def test_numeric_flags_out_of_range_are_one_clear_line(args: list[str], message: str) -> None:
    done = run(*args)
    assert done.returncode in (1, 2)
    assert message in one_line_error(done)


def test_models_info_takes_its_flags_before_the_path(gguf_path: Path) -> None:
    done = run("models", "info", "--json", str(gguf_path))
    assert done.returncode == 0, done.stderr
    assert b'"architecture": "llama"' in done.stdout


@pytest.fixture
def lab(tmp_path: Path):
    """A config with endpoint ``lab`` on a misbehaving server; yields (server factory, env)."""
    servers: list[MisbehavingServer] = []

    def serve(mode: str, payload: str = "", **settings: str) -> dict:
        server = MisbehavingServer(mode, payload=payload)
        servers.append(server)
        extra = "".join(f'{k} = {v}\n' for k, v in settings.items())
        config = tmp_path / "config.toml"
        config.write_text(f'[endpoints.lab]\nurl = "{server.url}"\n{extra}')
        return {"HEARTH_CONFIG": str(config)}

    yield serve
    for server in servers:
        server.close()


@pytest.mark.parametrize("stdin", [b"caf\xe9 cr\xe8me, na\xefve\n", bytes(range(256)) * 4])
@pytest.mark.parametrize("lang", ["C", "C.UTF-8", "en_US.ISO-8859-1"])
def test_input_that_is_not_utf8_is_read_not_a_traceback(lab, stdin: bytes, lang: str) -> None:
    env = {**lab("hostile-reply", payload="réponse → ✓"), "LANG": lang, "LC_ALL": lang}
    done = run("ask", "--endpoint", "lab", b"why \xff\xfe?", stdin=stdin, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.strip()


def test_a_reader_that_leaves_the_pipe_ends_quietly(lab) -> None:
    env = {**os.environ, **lab("endless")}
    shell = f"{' '.join(HEARTH)} ask --endpoint lab --max-tokens 2000 hi | head -c 10"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, timeout=60, cwd=REPO, env=env)
    assert done.stdout == b"tok tok to"
    assert b"BrokenPipe" not in done.stderr and b"Exception ignored" not in done.stderr, done.stderr


def test_remote_replies_end_at_max_tokens(lab) -> None:
    done = run("ask", "--endpoint", "lab", "--max-tokens", "50", "hi", env=lab("endless"), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["tok"] * 50


def test_keep_alive_comments_do_not_hold_a_stream_open(lab) -> None:
    settings = EndpointSettings(url=MisbehavingServer("comments").url, read_timeout=1.0)
    backend = RemoteBackend("lab", settings)
    with pytest.raises(BackendError, match="stalled: nothing for 1 s"):
        list(backend.stream([{"role": "user", "content": "hi"}], GenerationParams(), threading.Event()))
    done = run("ask", "--endpoint", "lab", "hi", env=lab("comments", read_timeout="1.5"), timeout=30)
    assert done.returncode == 1 and "stalled: nothing for 1.5 s" in one_line_error(done)


def test_a_server_echoing_the_api_key_never_gets_it_shown(lab) -> None:
    secret = "sk-hearth-test-5ec4e7"
    env = {**lab("hostile-error", payload=f"bad key {secret} for you", api_key_env='"LAB_KEY"'), "LAB_KEY": secret}
    done = run("ask", "--endpoint", "lab", "hi", env=env)
    err = one_line_error(done)
    assert "answered 500" in err and "bad key" in err
    assert secret.encode() not in done.stderr + done.stdout


def test_config_init_in_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the config directory should be")
    done = run("config", "init", env={"XDG_CONFIG_HOME": str(blocker)})
    assert done.returncode == 1 and "cannot write" in one_line_error(done)


def _wav_claiming(path: Path, seconds: int, rate: int = 16000) -> Path:
    """A WAV whose header says ``seconds`` long; the data is a sparse file (no disk used)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * rate)
    frames = seconds * rate
    with path.open("r+b") as handle:
        handle.seek(4)
        handle.write((36 + frames * 2).to_bytes(4, "little"))
        handle.seek(40)
        handle.write((frames * 2).to_bytes(4, "little"))
        handle.truncate(44 + frames * 2)
    return path


def test_a_two_hour_audio_file_is_refused_from_its_header(tmp_path: Path, speech_model: Path) -> None:
    wav = _wav_claiming(tmp_path / "meeting.wav", 2 * 3600)
    config = tmp_path / "voice.toml"
    config.write_text(f'[voice]\nstt_model = "{speech_model}"\n')
    # a parent of its own, so the peak RSS of its children (ru_maxrss, KiB) is hearth's alone
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", measure, *HEARTH, "voice", "test", "--file", str(wav)],
                          capture_output=True, timeout=120, cwd=REPO,
                          env={**os.environ, "HEARTH_CONFIG": str(config)})
    code, peak_kib = map(int, done.stdout.split())
    err = one_line_error(done)
    assert code == 1
    assert "7200 s of audio" in err and "voice.max_seconds" in err
    assert peak_kib < 400 * 1024  # nothing decoded: far from the 1.8 GB of loading it all


def test_term_dumb_is_a_clear_refusal_with_a_pointer() -> None:
    done = subprocess.run(["script", "-qec", " ".join(HEARTH), "/dev/null"], capture_output=True, timeout=60,
                          cwd=REPO, env={**os.environ, "TERM": "dumb"})
    out = done.stdout.decode()
    assert "needs a full terminal (TERM is dumb)" in out and "hearth ask" in out and "Traceback" not in out


def test_a_chat_whose_input_is_not_a_terminal_is_a_clear_refusal() -> None:
    """stdin a file (a terminal for output): one line, not a chat that ends at once (its input
    has ended) or that waits for keys that cannot come."""
    done = subprocess.run(["script", "-qec", " ".join(HEARTH) + " < /dev/null", "/dev/null"], capture_output=True,
                          timeout=60, cwd=REPO, env={**os.environ, "TERM": "xterm-256color"})
    out = done.stdout.decode().strip()
    assert "needs a full terminal (stdin is not a terminal)" in out and "hearth ask" in out, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out


def test_kv_state_files_are_owner_only(backend, tmp_path: Path) -> None:
    from engine.chat.kv_state import KVStateStore

    backend.state_store = KVStateStore(tmp_path / "kv", 64 * 2**20)
    try:
        messages = [{"role": "user", "content": "Tell me about lighthouses. " * 20}]
        list(backend.stream(messages, GenerationParams(temperature=0, max_tokens=4), threading.Event()))
        assert backend.save_state("chat-1", messages) > 0
    finally:
        backend.state_store = None
    files = list((tmp_path / "kv").iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files


def test_no_color_draws_the_chat_without_colour(lab, tmp_path: Path) -> None:
    from bench.ptyrun import PtyProcess

    env = {**os.environ, **lab("ok"), "TERM": "xterm-256color", "NO_COLOR": "1",
           **{k: str(tmp_path / k.lower()) for k in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}}
    term = PtyProcess([*HEARTH, "--endpoint", "lab"], env, rows=24, cols=80)
    try:
        term.wait_for(b"sk anything", timeout=30)  # the placeholder (its first cell is the cursor)
        term.write(b"hi\r")
        term.wait_for(b"TTFT", timeout=30)  # the status bar after the reply
        written = term._tail
    finally:
        term.close()
    for colour in (b"[38;2;", b"[48;2;", b"[38;5;", b"[48;5;"):  # truecolor and 256-colour SGR
        assert colour not in written, colour


def test_a_terminal_that_goes_away_without_a_hangup_ends_the_chat_and_keeps_it(gguf_path: Path, tmp_path: Path) -> None:
    """The terminal's far end closes mid-reply and no SIGHUP comes (hearth does not have the pty
    as its controlling terminal: a harness like this one, or a program that drops it): hearth
    exits, saving the chat, instead of reading an ended input forever (it spun a core until
    killed)."""
    from engine.chat.history import HistoryStore

    env = {**os.environ, "TERM": "xterm-256color",
           **{k: str(tmp_path / k.lower()) for k in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
                                                      "XDG_CONFIG_HOME")}}
    master, slave = os.openpty()  # (read here, not by a thread: a read under way keeps it open)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    hearth = subprocess.Popen([*HEARTH, "--model", str(gguf_path), "--threads", "2", "--n-ctx", "1024",
                               "--max-tokens", "900", "--temperature", "0"],
                              stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO, start_new_session=True)
    os.close(slave)
    shown = b""

    def read_until(needle: bytes, timeout: float) -> None:
        nonlocal shown
        deadline = time.monotonic() + timeout
        while needle not in shown:
            assert time.monotonic() < deadline, shown[-2000:]
            if select.select([master], [], [], 0.1)[0]:
                shown += os.read(master, 65536)

    try:
        read_until(b"sk anything", 60)
        os.write(master, b"Tell me a long story about a lighthouse keeper.\r")
        read_until(b"TTFT", 60)  # the first tokens' figures: the reply is streaming
        os.close(master)  # the far end goes away: hearth's reads of the pty end (EOF or EIO)
        code = hearth.wait(30)
    finally:
        if hearth.poll() is None:
            hearth.kill()
    assert code == 0
    store = HistoryStore(tmp_path / "xdg_data_home" / "hearth" / "history.sqlite3")
    [chat] = store.list_chats()
    user, reply = store.messages(chat.id)
    assert user.content.startswith("Tell me a long story") and reply.role == "assistant"
    assert reply.content.strip() and reply.status == "stopped", reply


def test_an_endpoint_chat_is_stored_with_the_model_the_server_names(tmp_path: Path) -> None:
    from engine.chat.history import HistoryStore
    from engine.chat.session import ChatSession

    server = MisbehavingServer("ok")
    try:
        store = HistoryStore(tmp_path / "h.sqlite3")
        session = ChatSession(RemoteBackend("lab", EndpointSettings(url=server.url)), store)
        list(session.send("hi", GenerationParams(), threading.Event()))
        assert store.get_chat(session.chat_id).model == "lab: m1"  # not "lab: ?"
    finally:
        server.close()

"""The remote (OpenAI-compatible) backend against real servers on 127.0.0.1: llama-cpp-python's
server on the real GGUF, and small servers that misbehave on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import paths
from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.history import HistoryStore
from engine.chat.remote import RemoteBackend
from engine.chat.session import ChatSession
from engine.config import EndpointSettings, settings_from_dict
from engine.errors import BackendError, ModelLoadError
from tests.apphelpers import ask, wait_until
from tests.servers import LlamaServer, MisbehavingServer, free_port
from tui.app import HearthApp
from tui.widgets.conversation import ReplyView
from tui.widgets.status_bar import StatusBar

pytestmark = pytest.mark.model
SECRET = "sk-hearth-test-4f9c2b7e1d"
GREEDY = GenerationParams(temperature=0.0, max_tokens=64)
QUESTION = "What is the capital of France? Answer in one word."


@pytest.fixture(scope="module")
def server(gguf_path: Path, tmp_path_factory) -> LlamaServer:
    """A real OpenAI-compatible server that wants an API key."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    srv = LlamaServer(gguf_path, log, api_key=SECRET).start()
    yield srv
    srv.kill()


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEARTH_TEST_KEY", SECRET)
    return "HEARTH_TEST_KEY"


def endpoint(url: str, **values) -> EndpointSettings:
    return EndpointSettings(url=url, **values)


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent))


def test_streams_a_reply_from_the_server(server: LlamaServer, key_env: str, no_cancel) -> None:
    backend = RemoteBackend("lab", endpoint(server.url, api_key_env=key_env))
    info = backend.load()
    assert info.name == "lab: smollm2"
    events = list(backend.stream([{"role": "user", "content": QUESTION}], GREEDY, no_cancel))
    assert "Paris" in text_of(events)
    assert len(events) > 3 and events[-1].finish_reason == "stop"
    assert events[-1].ttft_s is not None and events[-1].tokens_per_s
    backend.close()


def test_cancel_closes_the_stream_within_one_chunk(server: LlamaServer, key_env: str) -> None:
    backend = RemoteBackend("lab", endpoint(server.url, api_key_env=key_env))
    cancel = threading.Event()
    seen = 0
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    for event in backend.stream(messages, GenerationParams(temperature=0, max_tokens=500), cancel):
        if event.finish_reason is None:
            seen += 1
            if seen == 5:
                cancel.set()
        else:
            final = event
    assert final.finish_reason == "cancelled" and seen == 5
    # the server is free again at once: it stopped generating when the stream closed
    events = list(backend.stream([{"role": "user", "content": QUESTION}], GREEDY, threading.Event()))
    assert "Paris" in text_of(events)
    backend.close()


def test_models_list_and_ask_through_the_cli(server: LlamaServer, key_env: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[endpoints.lab]\nurl = "{server.url}"\napi_key_env = "{key_env}"\n')
    env = {**os.environ, "HEARTH_CONFIG": str(config)}
    listed = subprocess.run([sys.executable, "-m", "tui.cli", "models", "list", "--endpoint", "lab", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert '"name": "smollm2"' in listed.stdout
    answered = subprocess.run(
        [sys.executable, "-m", "tui.cli", "ask", "--endpoint", "lab", "--temperature", "0", QUESTION],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert answered.returncode == 0, answered.stderr
    assert "Paris" in answered.stdout
    assert SECRET not in answered.stdout + answered.stderr


async def test_tui_streams_from_the_endpoint_and_never_shows_the_key(
    server: LlamaServer, key_env: str
) -> None:
    settings = settings_from_dict({"chat": {"temperature": 0.0},
                                   "endpoints": {"lab": {"url": server.url, "api_key_env": key_env}}})
    app = HearthApp(settings, RemoteBackend("lab", settings.endpoints["lab"]),
                    HistoryStore(paths.history_db_path()))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await ask(pilot, QUESTION)
        await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming)
        assert "Paris" in screen.query_one(ReplyView).text
        assert "lab: smollm2" in str(screen.query_one(StatusBar).render())
        assert SECRET not in app.export_screenshot()
    db = paths.history_db_path()
    log = paths.log_file()
    for path in (db, Path(f"{db}-wal"), log):
        if path.exists():
            assert SECRET.encode() not in path.read_bytes(), path


def test_server_killed_mid_stream_then_back(gguf_path: Path, tmp_path: Path) -> None:
    srv = LlamaServer(gguf_path, tmp_path / "server.log").start()
    try:
        backend = RemoteBackend("lab", endpoint(srv.url, read_timeout=10))
        store = HistoryStore(tmp_path / "h.sqlite3")
        session = ChatSession(backend, store)
        streamed = []
        with pytest.raises(BackendError) as info:
            for event in session.send("Write a long story about a dragon.",
                                      GenerationParams(temperature=0, max_tokens=500), threading.Event()):
                if isinstance(event, TokenEvent) and event.text:
                    streamed.append(event.text)
                    if len(streamed) == 10:
                        srv.kill()
        assert "dropped the connection" in info.value.message or "cannot reach" in info.value.message
        saved = store.messages(session.chat_id)
        assert saved[-1].status == "error" and saved[-1].content == "".join(streamed)
        srv.start()  # the same port again
        events = list(session.send(QUESTION, GREEDY, threading.Event()))
        assert "Paris" in text_of(events)
    finally:
        srv.kill()


@pytest.mark.parametrize(
    ("mode", "values", "error", "message"),
    [
        ("auth", {"api_key_env": "HEARTH_TEST_KEY"}, ModelLoadError, "the key in $HEARTH_TEST_KEY was refused"),
        ("auth", {"api_key_env": "HEARTH_UNSET_KEY"}, ModelLoadError, "$HEARTH_UNSET_KEY is not set"),
        ("stall", {"read_timeout": 1.0}, BackendError, "stalled: nothing for 1 s"),
        ("drop", {}, BackendError, "dropped the connection mid-reply"),
        ("broken", {}, BackendError, "sent a malformed chunk"),
        ("error500", {}, BackendError, "answered 500: model crashed: out of memory"),
        ("models404", {}, BackendError, "answered 404"),
        ("ok", {"model": "absent"}, ModelLoadError, "has no model 'absent'; it serves: m1"),
    ],
)
def test_misbehaving_servers_give_one_clear_error(mode, values, error, message, key_env) -> None:
    server = MisbehavingServer(mode)
    try:
        backend = RemoteBackend("lab", endpoint(server.url, **values))
        streamed = []
        with pytest.raises(error) as info:
            for event in backend.stream([{"role": "user", "content": "hi"}], GREEDY, threading.Event()):
                streamed.append(event.text)
        assert message in info.value.message
        assert "\n" not in info.value.message and SECRET not in info.value.message
        if mode in ("stall", "drop", "broken"):
            assert "".join(streamed) == "Hello there"  # what arrived before the failure
        if values.get("api_key_env") == key_env:
            assert server.seen_headers[0]["Authorization"] == f"Bearer {SECRET}"
    finally:
        server.close()


def test_unreachable_host_and_fallback_to_local(gguf_path: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelLoadError, match="cannot reach endpoint lab"):
        RemoteBackend("lab", endpoint(url, connect_timeout=1)).load()
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\npath = "{gguf_path}"\n[endpoints.lab]\nurl = "{url}"\nfallback = "local"\n')
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "ask", "--endpoint", "lab", "--temperature", "0", QUESTION],
        capture_output=True, text=True, env={**os.environ, "HEARTH_CONFIG": str(config)},
        timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "using the local model instead" in result.stderr


def test_endpoint_config_is_validated() -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="endpoints.lab.url must start with http"):
        settings_from_dict({"endpoints": {"lab": {"url": "192.168.1.20:8080"}}})
    with pytest.raises(ConfigError, match="unknown key endpoints.lab.api_key .*did you mean 'api_key_env'"):
        settings_from_dict({"endpoints": {"lab": {"url": "http://x/v1", "api_key": "secret"}}})


def test_cancel_ends_a_stalled_stream_without_waiting_for_the_timeout() -> None:
    server = MisbehavingServer("stall")  # two chunks, then 5 s of silence
    backend = RemoteBackend("lab", endpoint(server.url, read_timeout=60))
    cancel = threading.Event()
    events: list[TokenEvent] = []

    def consume() -> None:
        for event in backend.stream([{"role": "user", "content": "hi"}], GREEDY, cancel):
            events.append(event)
            if len(events) == 2:
                cancel.set()

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=3)  # liveness bound, well under the server's 5 s stall
    try:
        assert not worker.is_alive(), "Esc waited for the stalled server"
        assert events[-1].finish_reason == "cancelled"
        assert "".join(e.text for e in events) == "Hello there"
    finally:
        worker.join()
        server.close()


async def test_palette_switch_between_local_and_endpoint(
    server: LlamaServer, key_env: str, gguf_path: Path
) -> None:
    from engine.chat.llama import LlamaBackend

    settings = settings_from_dict({
        "chat": {"temperature": 0.0}, "model": {"path": str(gguf_path)},
        "endpoints": {"lab": {"url": server.url, "api_key_env": key_env}},
    })
    app = HearthApp(settings, LlamaBackend(gguf_path, n_ctx=2048), HistoryStore(paths.history_db_path()))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        commands = [c.title for c in app.get_system_commands(screen)]
        assert "Use endpoint lab" in commands and "Use the local model" in commands
        await ask(pilot, QUESTION)
        await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming)
        screen.switch_backend("lab")
        status = screen.query_one(StatusBar)
        await wait_until(pilot, lambda: "lab: smollm2" in str(status.render()) and app.session.backend.loaded)
        await ask(pilot, "And of Germany? Answer in one word.")
        await wait_until(pilot, lambda: len(screen.query(ReplyView)) == 2 and not screen.streaming)
        assert screen.query(ReplyView).last().text  # the same chat went on, on the server
        assert isinstance(app.session.backend, RemoteBackend)


async def test_tui_falls_back_to_local_when_the_endpoint_is_down(gguf_path: Path) -> None:
    settings = settings_from_dict({
        "chat": {"temperature": 0.0}, "model": {"path": str(gguf_path)},
        "endpoints": {"lab": {"url": f"http://127.0.0.1:{free_port()}/v1", "fallback": "local",
                              "connect_timeout": 1.0}},
    })
    app = HearthApp(settings, RemoteBackend("lab", settings.endpoints["lab"]),
                    HistoryStore(paths.history_db_path()))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: any(n.title == "Fallback" for n in app._notifications))
        assert any("cannot reach endpoint lab" in n.message for n in app._notifications)
        screen = app.screen
        await ask(pilot, QUESTION)
        await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming)
        assert "Paris" in screen.query_one(ReplyView).text


def test_verify_false_is_warned_about(tmp_path: Path) -> None:
    server = MisbehavingServer("ok")
    try:
        config = tmp_path / "config.toml"
        config.write_text(f'[endpoints.lab]\nurl = "{server.url}"\nverify = false\n')
        result = subprocess.run(
            [sys.executable, "-m", "tui.cli", "ask", "--endpoint", "lab", "hi"], capture_output=True,
            text=True, env={**os.environ, "HEARTH_CONFIG": str(config)}, timeout=60, stdin=subprocess.DEVNULL)
        assert "TLS certificates are not checked (verify = false)" in result.stderr
        assert result.returncode == 0 and result.stdout == "Hello there\n"
    finally:
        server.close()


async def test_tui_keeps_and_marks_a_reply_cut_off_by_the_server() -> None:
    server = MisbehavingServer("drop")  # two chunks, then the connection goes
    try:
        settings = settings_from_dict({"endpoints": {"lab": {"url": server.url}}})
        app = HearthApp(settings, RemoteBackend("lab", settings.endpoints["lab"]),
                        HistoryStore(paths.history_db_path()))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            await ask(pilot, "hi")
            await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming)
            reply = screen.query_one(ReplyView)
            assert reply.text == "Hello there" and reply.status == "error"
            assert "failed" in str(reply.query_one(".reply-status").render())
            assert any("dropped the connection" in n.message for n in app._notifications)
        store = HistoryStore(paths.history_db_path())
        saved = store.messages(store.list_chats()[0].id)
        assert [(m.role, m.content, m.status) for m in saved] == [
            ("user", "hi", "done"), ("assistant", "Hello there", "error")]
    finally:
        server.close()


def test_self_signed_certificate_is_refused_unless_verify_is_off(tmp_path: Path, no_cancel) -> None:
    server = MisbehavingServer("ok", tls_dir=tmp_path)
    try:
        with pytest.raises(ModelLoadError) as info:
            RemoteBackend("lab", endpoint(server.url)).load()
        assert "TLS failure talking to endpoint lab" in info.value.message
        assert "verify = false" in info.value.message
        insecure = RemoteBackend("lab", endpoint(server.url, verify=False))
        assert "TLS certificates are not checked" in insecure.insecure_warning
        assert text_of(insecure.stream([{"role": "user", "content": "hi"}], GREEDY, no_cancel)) == "Hello there"
        insecure.close()
    finally:
        server.close()

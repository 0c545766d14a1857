"""The llama.cpp backend and chat session on the real SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.history import HistoryStore
from engine.chat.llama import LlamaBackend
from engine.chat.session import SAVE_INTERVAL_S, ChatSession, ContextTrimmed, ReplySaved
from engine.errors import ContextOverflowError, ModelLoadError

pytestmark = pytest.mark.model

GREEDY = GenerationParams(temperature=0.0, max_tokens=64)
QUESTION = "What is the capital of France? Answer in one word."


def collect(events) -> tuple[str, list[TokenEvent]]:
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    return "".join(e.text for e in tokens), tokens


def test_streams_many_token_events_with_figures(backend: LlamaBackend, no_cancel) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]
    text, events = collect(backend.stream(messages, GenerationParams(temperature=0, max_tokens=80), no_cancel))
    assert len(events) > 20
    assert all(str(n) in text for n in range(1, 11))
    last = events[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.n_generated == len(events) - 1  # every token event, then the final one
    assert last.ttft_s is not None and 0 < last.ttft_s <= last.elapsed_s
    assert last.tokens_per_s and last.tokens_per_s > 0
    assert last.n_prompt_tokens == backend.count_tokens(messages)


def test_answers_the_capital_question(backend: LlamaBackend, no_cancel) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    text, events = collect(backend.stream(messages, GREEDY, no_cancel))
    assert "Paris" in text
    assert events[-1].finish_reason == "stop"


def test_cancel_stops_within_one_token(backend: LlamaBackend) -> None:
    cancel = threading.Event()
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    seen = 0
    final = None
    for event in backend.stream(messages, GenerationParams(temperature=0, max_tokens=500), cancel):
        if event.finish_reason is None:
            seen += 1
            if seen == 5:
                cancel.set()
        else:
            final = event
    assert final is not None and final.finish_reason == "cancelled"
    assert seen == 5  # no token arrives after the cancel
    assert final.n_generated == 5


def test_second_turn_evaluates_only_the_new_message(backend: LlamaBackend, no_cancel) -> None:
    session = ChatSession(backend, store=None, system_prompt="You are a helpful assistant.")
    _, first = collect(session.send(QUESTION, GREEDY, no_cancel))
    follow_up = "And of Germany?"
    _, second = collect(session.send(follow_up, GREEDY, no_cancel))
    turn1, turn2 = first[-1], second[-1]
    new_part = backend.count_tokens([{"role": "user", "content": follow_up}])
    assert turn2.n_prompt_tokens > turn1.n_prompt_tokens + turn1.n_generated
    # Only the new user message (plus at most the previous reply's end-of-turn tokens) is
    # processed: the rest comes from the KV cache, as llama.cpp's own counters show.
    assert turn2.n_prompt_evaluated <= new_part + 4
    assert turn2.n_prompt_evaluated < turn2.n_prompt_tokens / 2


def test_context_overflow_drops_the_oldest_turn(gguf_path: Path, no_cancel) -> None:
    small = LlamaBackend(gguf_path, n_ctx=256, seed=1)
    try:
        session = ChatSession(small, store=None, system_prompt="Be brief.")
        long_text = "Describe the weather in detail. " * 12
        params = GenerationParams(temperature=0, max_tokens=40)
        trimmed: list[ContextTrimmed] = []
        for _ in range(3):
            events = list(session.send(long_text, params, no_cancel))
            trimmed += [e for e in events if isinstance(e, ContextTrimmed)]
        assert trimmed, "a 256-token window cannot hold three long turns"
        assert trimmed[0].dropped_messages >= 2  # a whole turn: user + assistant
        assert len(session.messages) == 6  # the session keeps everything; only the prompt is trimmed
        with pytest.raises(ContextOverflowError):
            list(session.send("word " * 400, params, no_cancel))
        assert len(session.messages) == 6  # the refused message was not added
    finally:
        small.close()


def test_reply_is_saved_while_it_streams(backend: LlamaBackend, tmp_path: Path, no_cancel) -> None:
    db = tmp_path / "h.sqlite3"
    store = HistoryStore(db)
    session = ChatSession(backend, store, system_prompt="")
    watcher = sqlite3.connect(db)
    seen_partial = []
    params = GenerationParams(temperature=0, max_tokens=400)
    for event in session.send("Write a long story about a dragon and a knight.", params, no_cancel):
        streamed_s = event.elapsed_s - (event.ttft_s or event.elapsed_s) if isinstance(event, TokenEvent) else 0
        if streamed_s > 2 * SAVE_INTERVAL_S + 0.1 and event.n_generated >= 10 and not seen_partial:
            row = watcher.execute(
                "SELECT content, status FROM messages WHERE role = 'assistant'"
            ).fetchone()
            seen_partial.append(row)
        if isinstance(event, ReplySaved):
            saved = event
    assert seen_partial, "the reply finished before a save interval passed"
    content, status = seen_partial[0]
    assert status == "streaming" and len(content) > 0
    final = store.messages(session.chat_id)
    assert [m.role for m in final] == ["user", "assistant"]
    assert final[1].content == saved.text and final[1].status == "done"
    assert final[1].content.startswith(content)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, g: d / "absent.gguf", "does not exist"),
        (lambda d, g: d, "is not a file"),
        (lambda d, g: _write(d / "x.gguf", b"PK\x03\x04 not a model"), "is not a GGUF model"),
        (lambda d, g: _write(d / "t.gguf", g.read_bytes()[: 4_000_000]), "corrupted or incomplete"),
        (lambda d, g: _write(d / "h.gguf", b"GGUF"), "corrupted or incomplete"),
    ],
)
def test_bad_model_files_are_one_clear_error(tmp_path: Path, gguf_path: Path, make, message) -> None:
    with pytest.raises(ModelLoadError) as info:
        LlamaBackend(make(tmp_path, gguf_path)).load()
    assert message in info.value.message
    assert "\n" not in info.value.message


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

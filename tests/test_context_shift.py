"""Long chats stay fast: once the context window is full, the oldest turns leave the KV cache in
place and the rest slides back (llama.cpp's context shift), so each turn evaluates only its new
tokens — on the real model, with llama.cpp's own counters. Where memory cannot shift, the window
drops to about half at once, so a full evaluation happens once every several turns."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.history import HistoryStore
from engine.chat.kv_state import KVStateStore
from engine.chat.llama import LlamaBackend
from engine.chat.session import ChatSession, ContextTrimmed

pytestmark = pytest.mark.model
PARAMS = GenerationParams(temperature=0.0, max_tokens=24)
NEW_TOKENS = 24 + 24 + 16
"""What a turn may evaluate once the window is full: its message (~20 tokens), the previous reply
(at most 24) and the template's few tokens."""


def say(session: ChatSession, text: str) -> tuple[str, TokenEvent, list]:
    reply, final, events = [], None, []
    for event in session.send(text, PARAMS, threading.Event()):
        events.append(event)
        if isinstance(event, TokenEvent):
            reply.append(event.text)
            if event.finish_reason is not None:
                final = event
    assert final is not None
    return "".join(reply), final, events


def filler(session: ChatSession, turns: range) -> list[tuple[int, TokenEvent]]:
    return [(session.window_start, say(session, f"Tell me one short fact about topic number {i}.")[1]) for i in turns]


def test_a_long_chat_slides_its_window_and_evaluates_only_new_tokens(gguf_path: Path, tmp_path: Path) -> None:
    backend = LlamaBackend(gguf_path, n_ctx=512, n_threads=2, seed=1)
    session = ChatSession(backend, HistoryStore(tmp_path / "h.sqlite3"), "You are a helpful assistant.")
    turns = filler(session, range(14))
    assert backend.can_shift
    starts = [start for start, _ in turns] + [session.window_start]
    assert len(set(starts)) >= 4  # the window filled and slid several times
    after = [event for start, event in turns if start > 0]
    assert after and all(event.n_prompt_evaluated <= NEW_TOKENS for event in after), \
        [(e.n_prompt_evaluated, e.n_prompt_tokens) for e in after]
    say(session, "My cat is called Whiskers.")
    say(session, "What is two plus two?")
    answer, final, _ = say(session, "What is my cat called?")
    assert "Whiskers" in answer and final.n_prompt_evaluated <= NEW_TOKENS
    assert session.window_start > starts[-1]
    # the history keeps every turn; the chat remembers where its window starts
    assert len(session.store.messages(session.chat_id)) == 2 * 17
    assert session.store.window_start(session.chat_id) == session.window_start
    backend.close()


def test_the_ui_is_told_once_per_chat(gguf_path: Path) -> None:
    backend = LlamaBackend(gguf_path, n_ctx=512, n_threads=2, seed=1)
    session = ChatSession(backend, None, "You are a helpful assistant.")
    trimmed = []
    for i in range(14):
        trimmed += [e for e in say(session, f"Tell me one short fact about topic number {i}.")[2]
                    if isinstance(e, ContextTrimmed)]
    assert session.window_start > 2 and len(trimmed) == 1
    backend.close()


def test_memory_that_cannot_shift_drops_half_the_window_at_once(gguf_path: Path) -> None:
    backend = LlamaBackend(gguf_path, n_ctx=512, n_threads=2, seed=1, allow_shift=False)
    session = ChatSession(backend, None, "You are a helpful assistant.")
    turns = filler(session, range(20))
    assert not backend.can_shift
    after = [event for start, event in turns if start > 0]
    full = [e for e in after if e.n_prompt_evaluated > e.n_prompt_tokens / 2]
    assert len(after) >= 6
    assert 1 <= len(full) <= len(after) // 3  # once every several turns, never every turn
    assert all(e.n_prompt_evaluated <= NEW_TOKENS for e in after if e not in full)
    backend.close()


def test_a_shifted_chat_saves_its_state_and_restores_it_after_a_restart(gguf_path: Path, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    states = KVStateStore(tmp_path / "kv", 64 * 2**20)
    first = LlamaBackend(gguf_path, n_ctx=512, n_threads=2, seed=1, state_store=states)
    session = ChatSession(first, store, "You are a helpful assistant.")
    filler(session, range(14))
    assert session.window_start > 0
    assert session.save_state() > 400  # the slid window: system prompt and the kept turns
    first.close()
    again = LlamaBackend(gguf_path, n_ctx=512, n_threads=2, seed=1, state_store=states)
    reopened = ChatSession(again, store, "You are a helpful assistant.")
    reopened.open(session.chat_id)
    assert reopened.window_start == session.window_start
    assert reopened.restore_state() > 400
    _, final, _ = say(reopened, "Tell me one short fact about topic number 99.")
    assert final.n_prompt_evaluated <= NEW_TOKENS  # warm after the restart, not evaluated again
    again.close()

"""Saved KV states on the real model: a restored chat skips its history; a stale, corrupted,
truncated or foreign state is ignored with a log line; the disk cap evicts the oldest."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import pytest

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.kv_state import KVStateStore
from engine.chat.llama import LlamaBackend

pytestmark = pytest.mark.model

GREEDY = GenerationParams(temperature=0.0, max_tokens=48)
SYSTEM = {"role": "system", "content": "You are a helpful assistant running offline on a small machine."}
HISTORY = [
    SYSTEM,
    {"role": "user", "content": "Tell me three facts about lighthouses, one sentence each, and "
                                "explain why they were built on rocky coasts."},
]
NEXT = {"role": "user", "content": "Now name one famous lighthouse."}


def reply(backend: LlamaBackend, messages) -> TokenEvent:
    events = list(backend.stream(messages, GREEDY, threading.Event()))
    last = events[-1]
    last.text = "".join(e.text for e in events)
    return last


@pytest.fixture
def store(tmp_path: Path) -> KVStateStore:
    return KVStateStore(tmp_path / "states", cap_bytes=512 * 2**20)


@pytest.fixture
def saved_chat(gguf_path: Path, store: KVStateStore):
    """A chat of two messages and a reply, whose KV state was saved under chat-1 by a backend
    that is then closed (as at exit). Yields the conversation so far."""
    first = LlamaBackend(gguf_path, n_ctx=2048, seed=7, state_store=store)
    answer = reply(first, HISTORY)
    conversation = [*HISTORY, {"role": "assistant", "content": answer.text}]
    saved = first.save_state("chat-1", conversation)
    first.close()
    assert saved >= answer.n_prompt_tokens  # the prompt and (most of) the reply
    return conversation


def test_restored_chat_processes_only_the_new_message(gguf_path, store, saved_chat) -> None:
    fresh = LlamaBackend(gguf_path, n_ctx=2048, seed=7, state_store=store)
    restored = fresh.restore_state("chat-1", saved_chat)
    assert restored > 60
    warm = reply(fresh, [*saved_chat, NEXT])
    fresh.close()

    cold = LlamaBackend(gguf_path, n_ctx=2048, seed=7)  # no store: the whole prompt is processed
    full = reply(cold, [*saved_chat, NEXT])
    cold.close()
    assert full.n_prompt_evaluated >= full.n_prompt_tokens - 1  # llama.cpp's counter: +-1
    assert warm.n_prompt_tokens == full.n_prompt_tokens
    assert abs(warm.n_prompt_evaluated - (warm.n_prompt_tokens - restored)) <= 1
    assert warm.n_prompt_evaluated < 30
    assert warm.n_generated > 0 and warm.text.strip()


def test_state_that_does_not_match_the_prompt_keeps_only_the_common_prefix(gguf_path, store, saved_chat) -> None:
    fresh = LlamaBackend(gguf_path, n_ctx=2048, seed=7, state_store=store)
    other = [{"role": "system", "content": "You are a pirate."}, *saved_chat[1:]]
    restored = fresh.restore_state("chat-1", other)
    event = reply(fresh, [*other, NEXT])
    fresh.close()
    assert restored < 10  # the template's opening tokens at most
    assert abs(event.n_prompt_evaluated - (event.n_prompt_tokens - restored)) <= 1
    assert event.text.strip()


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _forge_garbage(path: Path) -> None:
    """Garbage with matching metadata (size and sha256 rewritten): llama.cpp itself refuses it."""
    import hashlib

    garbage = b"not a llama state" * 1000
    path.write_bytes(garbage)
    meta = path.with_suffix(".json")
    record = json.loads(meta.read_text())
    record.update(bytes=len(garbage), sha256=hashlib.sha256(garbage).hexdigest())
    meta.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "damage, logged",
    [(_corrupt, "checksum mismatch"), (_truncate, "truncated"), (_forge_garbage, "llama.cpp refused it")],
)
def test_damaged_state_is_ignored_and_the_prompt_processed(
    gguf_path, store, saved_chat, damage, logged, caplog
) -> None:
    damage(store.directory / "chat-1.kv")
    fresh = LlamaBackend(gguf_path, n_ctx=2048, seed=7, state_store=store)
    with caplog.at_level(logging.WARNING, logger="hearth.kv_state"):
        assert fresh.restore_state("chat-1", saved_chat) == 0
    event = reply(fresh, [*saved_chat, NEXT])
    fresh.close()
    assert logged in caplog.text
    assert event.n_prompt_evaluated >= event.n_prompt_tokens - 1
    assert event.text.strip()
    assert not (store.directory / "chat-1.kv").exists()  # not tried again


def test_state_from_another_model_file_is_ignored(gguf_path, store, saved_chat, tmp_path, caplog) -> None:
    other_model = tmp_path / "other.gguf"  # same bytes, another file: the identity differs
    shutil.copyfile(gguf_path, other_model)
    foreign = LlamaBackend(other_model, n_ctx=2048, seed=7, state_store=store)
    with caplog.at_level(logging.WARNING, logger="hearth.kv_state"):
        assert foreign.restore_state("chat-1", saved_chat) == 0
    event = reply(foreign, [*saved_chat, NEXT])
    foreign.close()
    assert "another model or context" in caplog.text and "model" in caplog.text
    assert event.n_prompt_evaluated >= event.n_prompt_tokens - 1


def test_state_saved_at_another_context_size_is_ignored(gguf_path, store, saved_chat, caplog) -> None:
    smaller = LlamaBackend(gguf_path, n_ctx=1024, seed=7, state_store=store)
    with caplog.at_level(logging.WARNING, logger="hearth.kv_state"):
        assert smaller.restore_state("chat-1", saved_chat) == 0
    smaller.close()
    assert "n_ctx" in caplog.text


def test_short_context_is_not_saved(gguf_path, store) -> None:
    llama = LlamaBackend(gguf_path, n_ctx=2048, seed=7, state_store=store)
    messages = [{"role": "user", "content": "Hi"}]
    answer = reply(llama, messages)
    saved = llama.save_state("chat-2", [*messages, {"role": "assistant", "content": answer.text}])
    llama.close()
    assert answer.n_prompt_tokens < 64
    if saved == 0:
        assert not (store.directory / "chat-2.kv").exists()
    else:
        assert saved >= 64  # a long reply made it worth saving


def test_context_holding_another_chat_is_not_saved_under_this_key(gguf_path, store, saved_chat) -> None:
    llama = LlamaBackend(gguf_path, n_ctx=2048, seed=7, state_store=store)
    reply(llama, saved_chat)  # the KV now holds this chat
    other_chat = [{"role": "system", "content": "Different."}, {"role": "user", "content": "x " * 80}]
    assert llama.save_state("chat-9", other_chat) == 0
    llama.close()
    assert not (store.directory / "chat-9.kv").exists()


def test_cap_evicts_the_least_recently_saved(tmp_path: Path) -> None:
    store = KVStateStore(tmp_path / "states", cap_bytes=2500)
    identity = {"model": "m.gguf", "size": 1, "mtime_ns": 1, "n_ctx": 2048}
    for key in ("chat-1", "chat-2", "chat-3"):
        with store.saving(key, identity) as tmp:
            tmp.write_bytes(b"k" * 1000)
    assert store.find("chat-1", identity) is None
    assert store.find("chat-2", identity) is not None
    assert store.find("chat-3", identity) is not None
    assert store.total_bytes() == 2000


def test_failed_write_records_nothing(tmp_path: Path) -> None:
    store = KVStateStore(tmp_path / "states", cap_bytes=10_000)
    identity = {"model": "m.gguf", "size": 1, "mtime_ns": 1, "n_ctx": 2048}
    with pytest.raises(OSError):
        with store.saving("chat-1", identity) as tmp:
            tmp.write_bytes(b"half")
            raise OSError("disk full")
    assert list(store.directory.iterdir()) == []

"""A chat session: the conversation, its history rows, and one backend.

Data flows one way: ``send(prompt)`` -> fit to the context window -> ``backend.stream`` -> the
caller (TUI worker or ``hearth ask``), and the same text -> the history store, saved while it
streams (at most ``SAVE_INTERVAL_S`` apart) so a crash loses at most that much of a reply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.chat.backend import ChatBackend, GenerationParams, Message, TokenEvent
from engine.chat.context import fit_to_context
from engine.chat.history import HistoryError, HistoryStore, MessageStatus, StoredMessage
from engine.chat.kv_state import KVStateStore
from engine.errors import ContextOverflowError, ModelLoadError
from engine.sanitize import inert

LOG = logging.getLogger("hearth.session")
T = TypeVar("T")

SAVE_INTERVAL_S = 0.5
"""Seconds between saves of a streaming reply (the issue asks for at least one a second)."""

TITLE_CHARS = 48
"""A new chat is titled with the first this-many characters of its first prompt."""


@dataclass(frozen=True)
class ContextTrimmed:
    """Yielded before the reply the first time a chat's oldest messages leave the context window
    (they stay in the history; the model no longer sees them)."""

    dropped_messages: int


@dataclass(frozen=True)
class ReplySaved:
    """Yielded last: the reply, how it ended, and the history's failure if some of this turn
    could not be stored (a full disk, a read-only or damaged database; the chat goes on)."""

    text: str
    status: MessageStatus
    storage_error: HistoryError | None = None


ReplyEvent = TokenEvent | ContextTrimmed | ReplySaved


@dataclass(frozen=True)
class RetiredBackend:
    """A backend the session no longer uses, with what to save of it: :meth:`close` saves its KV
    state for the chat it last served and frees it. Both wait on the disk (and a model's memory),
    so the TUI runs it in a worker."""

    backend: ChatBackend
    state: tuple[str, list[Message]] | None

    def close(self) -> None:
        """Save the KV state, then free the backend (freed even when the save fails; the failure
        is raised after, for the caller to log: a state is only an optimisation)."""
        try:
            if self.state is not None:
                self.backend.save_state(*self.state)
        finally:
            self.backend.close()


class ChatSession:
    """One conversation and the backend that answers it: the session is the only owner of the
    backend. Not thread-safe: one ``send`` at a time (the TUI's exclusive worker).

    Args:
        backend: any :class:`ChatBackend`, or ``None`` until there is a model.
        store: the history store, or ``None`` for a session that is not saved (``hearth ask``).
        system_prompt: sent first in every request; empty for none.
        kv_states: where saved KV states live (deleted with their chat); ``None``: none.
    """

    def __init__(
        self,
        backend: ChatBackend | None,
        store: HistoryStore | None,
        system_prompt: str = "",
        kv_states: KVStateStore | None = None,
        preset: str = "",
    ) -> None:
        self._backend = backend
        self.store = store
        self.system_prompt = system_prompt
        self.preset = preset
        """The name of the preset the chat is had with ('' for none): stored with the chat."""
        self.kv_states = kv_states
        self.chat_id: int | None = None
        self.messages: list[Message] = []
        self.window_start = 0
        """Index in :attr:`messages` of the first message the model still sees. It only moves
        forward (and is stored with the chat), so each turn's prompt starts with the tokens the
        KV cache holds: a long chat slides its window instead of being evaluated again."""
        self.storage_error: HistoryError | None = None
        """The history's latest failure to store this session's messages (``None``: all saved)."""
        self._unsaved: tuple[int, str, MessageStatus] | None = None

    @property
    def backend(self) -> ChatBackend | None:
        """The backend in use; change it with :meth:`switch_backend`."""
        return self._backend

    def switch_backend(self, backend: ChatBackend) -> RetiredBackend | None:
        """Chat on with ``backend`` (another model or endpoint); the open chat stays open and its
        next reply is stored with the new model's name. Returns the old backend, with this chat's
        state to save, for the caller to :meth:`RetiredBackend.close` off the UI thread."""
        old, self._backend = self._backend, backend
        if old is None or old is backend:
            return None
        return RetiredBackend(old, self.state_snapshot())

    def delete_chat(self, chat_id: int) -> None:
        """Delete a stored chat: its messages and its saved KV state. Deleting the open chat
        starts a new one.

        Raises:
            HistoryError: the database cannot be written.
        """
        assert self.store is not None
        self.store.delete_chat(chat_id)
        if self.kv_states is not None:  # the saved KV cache holds the chat's tokens
            self.kv_states.discard(f"chat-{chat_id}")
        if chat_id == self.chat_id:
            self.new()

    def open(self, chat_id: int) -> list[StoredMessage]:
        """Continue a stored chat; returns its user and assistant messages as stored.

        Raises:
            HistoryError: the chat cannot be read (a damaged database); the session is unchanged.
        """
        assert self.store is not None
        stored = [m for m in self.store.messages(chat_id) if m.role in ("user", "assistant")]
        start = self.store.window_start(chat_id)
        self.preset = self.store.chat_preset(chat_id)
        self.chat_id = chat_id
        self.messages = [Message(role=m.role, content=m.content) for m in stored]  # type: ignore[typeddict-item]
        self.window_start = min(start, len(self.messages))
        return stored

    @property
    def state_key(self) -> str | None:
        """The key of this chat's saved backend state (``chat-ID``); ``None`` before it is stored."""
        return f"chat-{self.chat_id}" if self.chat_id is not None else None

    def state_snapshot(self) -> tuple[str, list[Message]] | None:
        """``(key, messages)`` for :meth:`ChatBackend.save_state`, taken now (before the chat is
        switched) and saved later off the UI thread; ``None`` when there is nothing to save."""
        key = self.state_key
        if key is None or not self.messages:
            return None
        return key, self.with_system(self.messages[self.window_start:])

    def save_state(self) -> int:
        """Save the backend's state (KV cache) of this chat; returns tokens saved (0: none)."""
        snapshot = self.state_snapshot()
        return self._backend.save_state(*snapshot) if snapshot and self._backend else 0

    def restore_state(self) -> int:
        """Restore this chat's saved backend state if it still matches; returns prompt tokens
        restored (0: none). Loads the model.

        Raises:
            ModelLoadError: the model cannot be loaded.
        """
        snapshot = self.state_snapshot()
        return self._backend.restore_state(*snapshot) if snapshot and self._backend else 0

    def new(self) -> None:
        """Start over; the chat row is created with the first prompt."""
        self.chat_id = None
        self.messages = []
        self.window_start = 0

    def send(
        self, prompt: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[ReplyEvent]:
        """Send a user message and stream the reply.

        Yields an optional :class:`ContextTrimmed`, then :class:`TokenEvent`s whose text is
        already made inert (:func:`engine.sanitize.inert`), then one :class:`ReplySaved`.

        Raises:
            ContextOverflowError, ModelLoadError: the prompt cannot fit the context window, or
                the model cannot be loaded; the conversation is unchanged and the user message,
                stored when it was sent (so a crash while the model loads keeps it), is removed
                again, so the caller can hand the prompt back.
            BackendError: generation failed; the user message and any partial reply are saved
                first (status "error").
        """
        backend = self._backend
        if backend is None:
            raise ModelLoadError("no model: choose one (F2), or pass --model PATH")
        self.storage_error = None
        self.flush()
        conversation = [*self.messages, Message(role="user", content=prompt)]
        new_chat = self.chat_id is None
        self._ensure_chat(prompt, backend.describe().name)
        user_id = self._save_new("user", prompt)  # stored at once: a crash while loading keeps it
        try:
            backend.load()
            fitted = fit_to_context(
                self.with_system(conversation[self.window_start:]), backend.count_tokens, backend.n_ctx,
                params.max_tokens, drop_to=1.0 if backend.can_shift else 0.5,
            )
        except (ContextOverflowError, ModelLoadError):
            self._unsave(user_id, new_chat)  # handed back to the caller's prompt, not kept twice
            raise
        self.messages = conversation
        if self.store is not None and self.chat_id is not None:
            self._write(self.store.set_chat_model, self.chat_id, backend.describe().name)  # the model answering
        reply_id = self._save_new("assistant", "", "streaming")
        text: list[str] = []
        status: MessageStatus = "error"
        last_save = time.monotonic()
        if fitted.dropped_messages:
            first_time = self.window_start == 0
            self.window_start += fitted.dropped_messages
            if self.store is not None and self.chat_id is not None:
                self._write(self.store.set_window_start, self.chat_id, self.window_start)
            if first_time:
                yield ContextTrimmed(self.window_start)
        try:
            for event in backend.stream(fitted.messages, params, cancel):
                if event.text:
                    event.text = inert(event.text)
                    text.append(event.text)
                if event.finish_reason is not None:
                    status = "stopped" if event.finish_reason == "cancelled" else "done"
                    _log_reply(event)
                yield event
                now = time.monotonic()
                if reply_id and now - last_save >= SAVE_INTERVAL_S:
                    self._write(self.store.update_message, reply_id, "".join(text), "streaming")  # type: ignore[union-attr]
                    last_save = now
        finally:
            reply = "".join(text)
            if reply or status != "error":
                self.messages.append(Message(role="assistant", content=reply))
            if reply_id:
                self._unsaved = (reply_id, reply, status)
                self.flush()
        yield ReplySaved(reply, status, self.storage_error)

    def flush(self) -> bool:
        """Store the last reply if its final save failed (a full disk, since freed): the history
        then holds the reply the conversation has, not its last partial save. Returns whether
        everything is stored."""
        if self._unsaved is not None and self.store is not None:
            try:
                self.store.update_message(*self._unsaved)
                self._unsaved = None
            except HistoryError as error:
                self._failed(error)
        return self._unsaved is None

    def _write(self, method: Callable[..., T], *args: Any) -> T | None:
        """A history write; a failure is kept in :attr:`storage_error` and logged, never raised:
        the chat goes on, and the reply stays in the conversation."""
        try:
            return method(*args)
        except HistoryError as error:
            self._failed(error)
            return None

    def _failed(self, error: HistoryError) -> None:
        LOG.warning("history write failed: %s", error.message)
        self.storage_error = error

    def use_preset(self, name: str, system_prompt: str) -> None:
        """Chat on with preset ``name`` and its system prompt; the open chat remembers it (a
        failure to store that is kept in :attr:`storage_error`, like every history write)."""
        self.preset, self.system_prompt = name, system_prompt
        if self.store is not None and self.chat_id is not None:
            self._write(self.store.set_chat_preset, self.chat_id, name)

    def with_system(self, messages: list[Message]) -> list[Message]:
        """``messages`` with the system prompt in front (when there is one), as they are sent."""
        if not self.system_prompt:
            return list(messages)
        return [Message(role="system", content=self.system_prompt), *messages]

    def _ensure_chat(self, prompt: str, model: str) -> None:
        if self.store is not None and self.chat_id is None:
            title = " ".join(prompt.split())[:TITLE_CHARS] or "New chat"
            self.chat_id = self._write(self.store.create_chat, title, model, self.preset)

    def _unsave(self, message_id: int, chat_created: bool) -> None:
        if self.store is None or self.chat_id is None:
            return
        if chat_created:
            self._write(self.store.delete_chat, self.chat_id)
            self.chat_id = None
        elif message_id:
            self._write(self.store.delete_message, message_id)

    def _save_new(self, role: str, content: str, status: MessageStatus = "done") -> int:
        if self.store is None or self.chat_id is None:
            return 0
        return self._write(self.store.add_message, self.chat_id, role, content, status) or 0


def _log_reply(event: TokenEvent) -> None:
    rate = event.tokens_per_s
    LOG.info(
        "reply %s: prompt %d tokens (%d evaluated), generated %d tokens, TTFT %.3f s, "
        "%s tokens/s, %.3f s",
        event.finish_reason, event.n_prompt_tokens, event.n_prompt_evaluated, event.n_generated,
        event.ttft_s or 0.0, f"{rate:.2f}" if rate else "-", event.elapsed_s,
    )

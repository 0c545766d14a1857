"""A chat session: the conversation, its history rows, and one backend.

Data flows one way: ``send(prompt)`` -> fit to the context window -> ``backend.stream`` -> the
caller (TUI worker or ``hearth ask``), and the same text -> the history store, saved while it
streams (at most ``SAVE_INTERVAL_S`` apart) so a crash loses at most that much of a reply.
"""

from __future__ import annotations

import threading
import time
import logging
from dataclasses import dataclass
from typing import Iterator

from engine.backend import ChatBackend, GenerationParams, Message, TokenEvent
from engine.context import fit_to_context
from engine.history import HistoryStore, MessageStatus
from engine.sanitize import inert

LOG = logging.getLogger("hearth.session")

SAVE_INTERVAL_S = 0.5
"""Seconds between saves of a streaming reply (the issue asks for at least one a second)."""

TITLE_CHARS = 48
"""A new chat is titled with the first this-many characters of its first prompt."""


@dataclass(frozen=True)
class ContextTrimmed:
    """Yielded before the reply when the oldest messages were left out to fit ``n_ctx``."""

    dropped_messages: int


@dataclass(frozen=True)
class ReplySaved:
    """Yielded last: the reply as stored, and how it ended."""

    text: str
    status: MessageStatus


ReplyEvent = TokenEvent | ContextTrimmed | ReplySaved


class ChatSession:
    """One conversation. Not thread-safe: one ``send`` at a time (the TUI's exclusive worker).

    Args:
        backend: any :class:`ChatBackend`.
        store: the history store, or ``None`` for a session that is not saved (``hearth ask``).
        system_prompt: sent first in every request; empty for none.
        model_name: stored with new chats.
    """

    def __init__(
        self,
        backend: ChatBackend,
        store: HistoryStore | None,
        system_prompt: str = "",
        model_name: str = "",
    ) -> None:
        self.backend = backend
        self.store = store
        self.system_prompt = system_prompt
        self.model_name = model_name
        self.chat_id: int | None = None
        self.messages: list[Message] = []

    def open(self, chat_id: int) -> None:
        """Continue a stored chat."""
        assert self.store is not None
        self.chat_id = chat_id
        self.messages = [
            Message(role=m.role, content=m.content)  # type: ignore[typeddict-item]
            for m in self.store.messages(chat_id)
            if m.role in ("user", "assistant")
        ]

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
        return key, self._with_system(self.messages)

    def save_state(self) -> int:
        """Save the backend's state (KV cache) of this chat; returns tokens saved (0: none)."""
        snapshot = self.state_snapshot()
        return self.backend.save_state(*snapshot) if snapshot else 0

    def restore_state(self) -> int:
        """Restore this chat's saved backend state if it still matches; returns prompt tokens
        restored (0: none). Loads the model.

        Raises:
            ModelLoadError: the model cannot be loaded.
        """
        snapshot = self.state_snapshot()
        return self.backend.restore_state(*snapshot) if snapshot else 0

    def new(self) -> None:
        """Start over; the chat row is created with the first prompt."""
        self.chat_id = None
        self.messages = []

    def send(
        self, prompt: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[ReplyEvent]:
        """Send a user message and stream the reply.

        Yields an optional :class:`ContextTrimmed`, then :class:`TokenEvent`s whose text is
        already made inert (:func:`engine.sanitize.inert`), then one :class:`ReplySaved`.

        Raises:
            ContextOverflowError, ModelLoadError: the prompt cannot fit the context window, or
                the model cannot be loaded; nothing is saved and the conversation is unchanged,
                so the caller can keep the prompt.
            BackendError: generation failed; the user message and any partial reply are saved
                first (status "error").
        """
        self.backend.load()
        conversation = [*self.messages, Message(role="user", content=prompt)]
        fitted = fit_to_context(
            self._with_system(conversation),
            self.backend.count_tokens,
            self.backend.n_ctx,
            params.max_tokens,
        )
        self._ensure_chat(prompt)
        self.messages = conversation
        self._save_new("user", prompt)
        reply_id = self._save_new("assistant", "", "streaming")
        text: list[str] = []
        status: MessageStatus = "error"
        last_save = time.monotonic()
        if fitted.dropped_messages:
            yield ContextTrimmed(fitted.dropped_messages)
        try:
            for event in self.backend.stream(fitted.messages, params, cancel):
                if event.text:
                    event.text = inert(event.text)
                    text.append(event.text)
                if event.finish_reason is not None:
                    status = "stopped" if event.finish_reason == "cancelled" else "done"
                    _log_reply(event)
                yield event
                now = time.monotonic()
                if reply_id and now - last_save >= SAVE_INTERVAL_S:
                    self.store.update_message(reply_id, "".join(text), "streaming")  # type: ignore[union-attr]
                    last_save = now
        finally:
            reply = "".join(text)
            if reply or status != "error":
                self.messages.append(Message(role="assistant", content=reply))
            if reply_id:
                self.store.update_message(reply_id, reply, status)  # type: ignore[union-attr]
        yield ReplySaved(reply, status)

    def _with_system(self, messages: list[Message]) -> list[Message]:
        if not self.system_prompt:
            return list(messages)
        return [Message(role="system", content=self.system_prompt), *messages]

    def _ensure_chat(self, prompt: str) -> None:
        if self.store is not None and self.chat_id is None:
            title = " ".join(prompt.split())[:TITLE_CHARS] or "New chat"
            self.chat_id = self.store.create_chat(title, self.model_name)

    def _save_new(self, role: str, content: str, status: MessageStatus = "done") -> int:
        if self.store is None or self.chat_id is None:
            return 0
        return self.store.add_message(self.chat_id, role, content, status)


def _log_reply(event: TokenEvent) -> None:
    rate = event.tokens_per_s
    LOG.info(
        "reply %s: prompt %d tokens (%d evaluated), generated %d tokens, TTFT %.3f s, "
        "%s tokens/s, %.3f s",
        event.finish_reason, event.n_prompt_tokens, event.n_prompt_evaluated, event.n_generated,
        event.ttft_s or 0.0, f"{rate:.2f}" if rate else "-", event.elapsed_s,
    )

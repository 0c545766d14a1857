"""The one protocol every chat backend implements, and the events it streams.

The TUI and ``hearth ask`` only know :class:`ChatBackend`; the llama.cpp backend
(:mod:`engine.chat.llama`) implements it, and so can a remote OpenAI-compatible one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypedDict

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    """One chat message as chat templates take it."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one reply."""

    temperature: float = 0.7
    """0 is greedy."""
    top_p: float = 0.95
    max_tokens: int = 1024
    """Most tokens in the reply (also capped by the room left in the context window)."""
    grammar: str | None = None
    """A GBNF grammar (llama.cpp's format) the local backend holds the reply to."""
    json_schema: dict | None = None
    """The same constraint as a JSON schema, sent to servers as OpenAI's ``response_format``."""


FinishReason = Literal["stop", "length", "cancelled"]


@dataclass
class TokenEvent:
    """One step of a streamed reply.

    A stream yields events with ``text`` (possibly empty while a multi-byte character is
    incomplete) and ends with one event whose ``finish_reason`` is set.

    Attributes:
        text: newly generated text (already decoded UTF-8).
        n_prompt_tokens: tokens in the whole prompt of this turn.
        n_prompt_evaluated: prompt tokens actually processed this turn (the rest came from the
            KV cache of earlier turns).
        n_generated: reply tokens generated so far.
        ttft_s: time to first token, seconds from the call to :meth:`ChatBackend.stream` to the
            first generated token (prompt processing included); ``None`` before it.
        elapsed_s: seconds since the call.
        finish_reason: ``None`` while streaming, then "stop", "length" or "cancelled".
    """

    text: str = ""
    n_prompt_tokens: int = 0
    n_prompt_evaluated: int = 0
    n_generated: int = 0
    ttft_s: float | None = None
    elapsed_s: float = 0.0
    finish_reason: FinishReason | None = None

    def snapshot(self) -> TokenEvent:
        """A copy to yield while this event keeps accumulating counts (backends reuse one)."""
        return dataclasses.replace(self)

    @property
    def tokens_per_s(self) -> float | None:
        """Token-generation rate in tokens/s after the first token (prompt processing excluded)."""
        if self.ttft_s is None or self.n_generated < 2:
            return None
        gen_time = self.elapsed_s - self.ttft_s
        return (self.n_generated - 1) / gen_time if gen_time > 0 else None


@dataclass(frozen=True)
class ModelInfo:
    """What the status bar shows about the loaded model."""

    name: str
    """File stem or the server's model id."""
    quantization: str = ""
    """e.g. ``Q4_K_M``; empty when unknown."""
    n_ctx: int = 0
    """Context window in tokens."""
    extra: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    """Something the user should hear once after loading (e.g. a model with no chat template)."""


class ChatBackend(Protocol):
    """A chat engine: load once, stream replies, cancel between tokens, close.

    Implementations raise :class:`engine.errors.HearthError` subclasses only.

    """

    @property
    def model_path(self) -> Path | None:
        """The local GGUF file; ``None`` for a server's model."""
        ...

    @property
    def fallback(self) -> str:
        """``"local"`` when the local model should take over if this one cannot be reached (an
        endpoint's ``fallback``); else ""."""
        ...

    @property
    def insecure_warning(self) -> str:
        """What to tell the user about this connection ("" when nothing): TLS checks off."""
        ...

    def describe(self) -> ModelInfo:
        """What is known now: before loading, the name from the file or the config."""
        ...

    @property
    def loaded(self) -> bool:
        """:meth:`load` has succeeded (and :meth:`close` was not called since)."""
        ...

    @property
    def can_shift(self) -> bool:
        """Dropping the oldest turns keeps the rest of the cached prompt (llama.cpp's context
        shift, or a server's own cache): drop as few as fit. ``False``: every drop costs a full
        prompt evaluation, so drop to about half the window at once."""
        ...

    def load(self) -> ModelInfo:
        """Make the backend ready (load weights, connect). Idempotent.

        Raises:
            ModelLoadError: the model cannot be loaded.
        """
        ...

    def count_tokens(self, messages: list[Message]) -> int:
        """Tokens the chat template renders ``messages`` into, with the assistant prompt added."""
        ...

    @property
    def n_ctx(self) -> int:
        """Context window in tokens."""
        ...

    def stream(
        self, messages: list[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[TokenEvent]:
        """Generate the assistant's reply to ``messages``, one event per token.

        ``cancel`` is checked between tokens: once set, the stream ends within one token with
        ``finish_reason="cancelled"``.

        Raises:
            ContextOverflowError: the prompt does not fit the context window.
            BackendError: generation failed.
        """
        ...

    def save_state(self, key: str, messages: list[Message]) -> int:
        """Save what the backend keeps for the conversation ``key`` (the llama.cpp KV cache, as
        far as it matches ``messages``) so a later :meth:`restore_state` skips reprocessing it.
        Returns tokens saved (0: nothing)."""
        ...

    def restore_state(self, key: str, messages: list[Message]) -> int:
        """Restore what :meth:`save_state` kept for ``key`` if it still matches ``messages``.
        Returns prompt tokens restored (0: nothing; the prompt is processed as usual)."""
        ...

    def close(self) -> None:
        """Free the model or connection. Safe to call twice."""
        ...

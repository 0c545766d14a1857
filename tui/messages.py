"""Messages that worker threads post to the chat screen (past-tense events). Named apart from
``textual.events``: these are hearth's own."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from engine.chat.backend import ModelInfo, TokenEvent
from engine.errors import HearthError


@dataclass
class ModelLoaded(Message):
    info: ModelInfo


@dataclass
class ModelLoadFailed(Message):
    error: HearthError


@dataclass
class ContextTrimmed(Message):
    dropped_messages: int


@dataclass
class ReplyFinished(Message):
    """The reply ended: ``status`` is done, stopped or error; ``stats`` is the last token event."""

    text: str
    status: str
    stats: TokenEvent | None
    error: HearthError | None = None
    prompt: str = ""
    """The prompt, handed back when nothing was sent (so it can return to the input)."""
    storage_error: HearthError | None = None
    """The history could not store some of this turn (the reply is still shown)."""


@dataclass
class VoiceLevel(Message):
    """While recording: input level (dBFS) of the latest block and seconds recorded."""

    dbfs: float
    seconds: float

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VoiceLevel)  # a newer level supersedes one not yet drawn


@dataclass
class VoiceRecorded(Message):
    """Recording ended; transcription runs."""


@dataclass
class VoiceHeard(Message):
    """The transcript (empty: nothing caught), or the error that stopped voice input."""

    text: str
    error: HearthError | None = None
    cancelled: bool = False

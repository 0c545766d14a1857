"""Domain errors. Each carries a short user-facing title and a one-line message, so the CLI
prints one clear line and the TUI shows one notification; no traceback reaches a user."""

from __future__ import annotations

from engine.sanitize import inert


class HearthError(Exception):
    """Base of every error hearth shows to a user.

    Attributes:
        title: a few words naming what failed ("Config error").
        message: one line saying what is wrong and, where possible, what to do.
    """

    title = "Error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def one_line(self) -> str:
        """``"<title>: <message>"`` on a single line, made inert (messages carry file names and
        server replies)."""
        return inert(f"{self.title}: {self.message}".replace("\n", " "), one_line=True)


class ConfigError(HearthError):
    """The config file cannot be read, has a syntax error, an unknown key or a bad value."""

    title = "Config error"


class ModelLoadError(HearthError):
    """A model file is missing, is not GGUF, is truncated or llama.cpp refused it."""

    title = "Model error"


class ContextOverflowError(HearthError):
    """A single message is too long for the context window even with all history dropped."""

    title = "Message too long"


class BackendError(HearthError):
    """Generation failed inside a backend (engine error, server error)."""

    title = "Backend error"


class FetchError(HearthError):
    """A model download failed: hub unreachable, no such file, disk space, interrupted, checksum."""

    title = "Download error"


class HubUnreachable(FetchError):
    """The model hub cannot be reached at all (offline, DNS, refused): nothing can be fetched."""


class FetchCancelled(FetchError):
    """The user stopped a download; its partial file is kept for resuming."""

    title = "Download stopped"

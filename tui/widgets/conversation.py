"""Conversation widgets: a user message and an assistant reply that streams as Markdown.

Streamed reply text is already inert (engine.sanitize) when it arrives; text from the history
database is made inert here. While streaming, fragments go
through Textual's ``Markdown.get_stream()``, which coalesces what arrives while a frame renders;
when the stream ends, the whole reply is rendered once more from the full text.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownFence, MarkdownStream

from engine.sanitize import inert

STATUS_LABELS = {
    "stopped": "■ stopped",
    "error": "✖ failed",
    "streaming": "… interrupted",
}


class CodeBlock(MarkdownFence, can_focus=True):
    """A fenced code block that takes focus, so its code can be copied on its own."""

    BINDINGS = [Binding("c", "copy_code", "Copy code")]

    DEFAULT_CSS = """
    CodeBlock:focus { outline-left: thick $accent; }
    """

    @dataclass
    class CopyRequested(Message):
        text: str
        what: str

    def action_copy_code(self) -> None:
        self.post_message(self.CopyRequested(self.code, "code block"))


class ReplyMarkdown(Markdown):
    BLOCKS = {**Markdown.BLOCKS, "fence": CodeBlock, "code_block": CodeBlock}


class UserMessage(Static):
    """The user's words, shown as plain text: never parsed as markup, and made inert (a paste or
    the history database may hold escape sequences)."""

    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: thick $secondary;
        background: $boost;
        color: $foreground;
    }
    """

    def __init__(self, text: str) -> None:
        super().__init__(inert(text), markup=False)
        self.text = text


class ReplyView(Vertical):
    """An assistant reply: rendered Markdown and, when it did not finish, a status line."""

    DEFAULT_CSS = """
    ReplyView {
        height: auto;
        margin: 1 0 0 0;
    }
    ReplyView > ReplyMarkdown { margin: 0; padding: 0; background: transparent; }
    /* Reply text spans the line with its padding inside the text widget: one region per
       terminal line, so a streaming frame writes few escape sequences (issue: cheap to watch). */
    ReplyMarkdown > MarkdownBlock { padding: 0 1 0 2; }
    ReplyMarkdown > CodeBlock { padding: 0; margin: 1 1 1 2; }
    ReplyView > .reply-status { color: $warning; height: auto; padding: 0 1 0 2; }
    ReplyView > .reply-status.-hidden { display: none; }
    """

    def __init__(self, text: str = "", status: str = "done") -> None:
        super().__init__()
        self.text = text
        self.status = status
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield ReplyMarkdown(inert(self.text) or ("…" if self.status == "streaming" else ""))
        yield Static(
            STATUS_LABELS.get(self.status, ""),
            classes="reply-status" + ("" if self.status in STATUS_LABELS else " -hidden"),
            markup=False,
        )

    @property
    def markdown(self) -> ReplyMarkdown:
        return self.query_one(ReplyMarkdown)

    async def start_stream(self) -> None:
        """Begin streaming into an empty reply."""
        self.status = "streaming"
        await self.markdown.update("")
        self._stream = Markdown.get_stream(self.markdown)

    async def write(self, fragment: str) -> None:
        """Append streamed text (a batch of tokens)."""
        self.text += fragment
        if self._stream is not None:
            await self._stream.write(fragment)

    async def finish(self, text: str, status: str, note: str = "") -> None:
        """End the stream, render the full reply once, and show how it ended."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.text = text
        self.status = status
        await self.markdown.update(inert(text))
        label = self.query_one(".reply-status", Static)
        shown = note or STATUS_LABELS.get(status, "")
        label.update(shown)
        label.set_class(not shown, "-hidden")

"""The prompt input: a TextArea where Enter sends and ctrl+j (or shift+enter) adds a newline."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    """Multi-line prompt with sent-prompt recall.

    Keys: Enter sends; ctrl+j, and shift+enter where the terminal reports it, insert a newline
    (ctrl+j is the byte LF, which every terminal sends); up on the first line and down on the
    last line walk through earlier prompts.
    """

    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 8;
    }
    """

    @dataclass
    class Submitted(Message):
        """The user pressed Enter on a prompt (possibly blank: the receiver ignores those)."""

        input: PromptInput
        text: str

    def __init__(self, *, cursor_blink: bool = False, id: str | None = None) -> None:
        super().__init__(
            id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
            compact=True, highlight_cursor_line=False,
            placeholder="Ask anything · Enter sends · ctrl+j new line · ↑ earlier prompts",
        )
        self.cursor_blink = cursor_blink
        self._sent: list[str] = []
        self._recall: int | None = None
        self._draft = ""

    def remember(self, prompt: str) -> None:
        """Add a sent prompt to the recall list (consecutive duplicates are kept once)."""
        if not self._sent or self._sent[-1] != prompt:
            self._sent.append(prompt)
        self._recall = None

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key in ("ctrl+j", "shift+enter"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        row = self.cursor_location[0]
        if event.key == "up" and row == 0 and self._sent:
            event.stop()
            event.prevent_default()
            self._step_recall(-1)
            return
        if event.key == "down" and row == self.document.line_count - 1 and self._recall is not None:
            event.stop()
            event.prevent_default()
            self._step_recall(+1)
            return
        await super()._on_key(event)

    def _step_recall(self, step: int) -> None:
        if self._recall is None:
            self._draft = self.text
            index = len(self._sent) - 1
        else:
            index = self._recall + step
        if index >= len(self._sent):
            self._recall = None
            self.load_text(self._draft)
        else:
            self._recall = max(0, index)
            self.load_text(self._sent[self._recall])
        self.move_cursor(self.document.end)

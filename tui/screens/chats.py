"""Past chats: open, rename, delete. A modal list, all keyboard."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from engine.chat.history import ChatSummary, HistoryStore
from engine.errors import HearthError
from engine.sanitize import inert

if TYPE_CHECKING:
    from tui.app import HearthApp


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


class RenameScreen(ModalScreen[str | None]):
    """Ask for a new title; dismisses with it, or None on Esc."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    RenameScreen { align: center middle; }
    RenameScreen > Vertical { width: 60; height: auto; padding: 1 2; background: $panel; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New title (Enter saves, Esc cancels)")
            yield Input(inert(self._title, one_line=True), id="title")

    @on(Input.Submitted)
    def save(self, event: Input.Submitted) -> None:
        title = " ".join(event.value.split())
        self.dismiss(title or None)


class ChatsScreen(ModalScreen[int | None]):
    """Dismisses with the id of the chat to open, or None."""

    app: HearthApp  # this screen runs only in hearth's app: its typed `app`

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
    ]
    DEFAULT_CSS = """
    ChatsScreen { align: center middle; }
    ChatsScreen > Vertical { width: 90%; height: 80%; background: $panel; padding: 0 1; }
    ChatsScreen OptionList { height: 1fr; }
    """

    def __init__(self, store: HistoryStore, current: int | None) -> None:
        super().__init__()
        self.store = store
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Chats · Enter opens")
            yield OptionList(id="chats")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self, highlight: int | None = None) -> None:
        try:
            chats = self.store.list_chats()
        except HearthError as error:  # a damaged database: say so, keep the chat screen
            self.app.notify_error(error)
            self.dismiss(None)
            return
        options = self.query_one(OptionList)
        options.clear_options()
        now = time.time()
        options.add_options([self._option(chat, now) for chat in chats])
        if not chats:
            options.add_option(Option("No chats yet.", disabled=True))
        else:
            options.highlighted = min(highlight or 0, len(chats) - 1)
        options.focus()

    def _option(self, chat: ChatSummary, now: float) -> Option:
        mark = "● " if chat.id == self.current else "  "
        label = f"{mark}{chat.title}  ·  {chat.n_messages} messages  ·  {_age(now - chat.updated_at)}"
        return Option(Content(inert(label, one_line=True)), id=str(chat.id))  # titles are pastes

    def _selected(self) -> tuple[int, int] | None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None:
            return None
        option = options.get_option_at_index(index)
        return (int(option.id), index) if option.id else None

    @on(OptionList.OptionSelected)
    def open_chat(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(int(event.option.id))

    def action_rename(self) -> None:
        selected = self._selected()
        if selected is None:
            return
        chat_id, index = selected
        try:
            chat = self.store.get_chat(chat_id)
        except HearthError as error:
            self.app.notify_error(error)
            return

        def renamed(title: str | None) -> None:
            if title:
                try:
                    self.store.rename_chat(chat_id, title)
                except HearthError as error:
                    self.app.notify_error(error)
            self.reload(index)

        self.app.push_screen(RenameScreen(chat.title if chat else ""), renamed)

    def action_delete(self) -> None:
        selected = self._selected()
        if selected is None:
            return
        chat_id, index = selected
        try:
            self.app.session.delete_chat(chat_id)
        except HearthError as error:  # read-only or damaged: the chat stays
            self.app.notify_error(error)
            return
        self.notify("Chat deleted.")
        self.reload(index)

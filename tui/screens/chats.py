"""Past chats: open, rename, delete, search. A modal list, all keyboard.

The search field (``/`` or ctrl+f) filters as you type: with words in it the list shows every
message containing them (FTS5, :meth:`HistoryStore.search`), and Enter opens that chat at that
message."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from engine.chat.export import ROLE_NAMES
from engine.chat.history import ChatSummary, HistoryStore, SearchHit, snippet_parts
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


Opened = tuple[int, int | None]
"""What :class:`ChatsScreen` dismisses with: (chat id, id of the message to show, if a search
found one)."""


class ChatsScreen(ModalScreen[Opened | None]):
    """Dismisses with the chat to open (and the message a search found), or None."""

    app: HearthApp  # this screen runs only in hearth's app: its typed `app`

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("slash,ctrl+f", "search", "Search"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
    ]
    DEFAULT_CSS = """
    ChatsScreen { align: center middle; }
    ChatsScreen > Vertical { width: 90%; height: 80%; background: $panel; padding: 0 1; }
    ChatsScreen OptionList { height: 1fr; }
    ChatsScreen #search { margin: 0 0 1 0; }
    """

    def __init__(self, store: HistoryStore, current: int | None) -> None:
        super().__init__()
        self.store = store
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Chats · Enter opens · / searches every message")
            yield Input(placeholder="Search every chat…", id="search")
            yield OptionList(id="chats")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one(OptionList).focus()

    def reload(self, highlight: int | None = None) -> None:
        words = self.query_one("#search", Input).value
        if words.strip():
            self._show_hits(words)
            return
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

    def _option(self, chat: ChatSummary, now: float) -> Option:
        mark = "● " if chat.id == self.current else "  "
        label = f"{mark}{chat.title}  ·  {chat.n_messages} messages  ·  {_age(now - chat.updated_at)}"
        return Option(Content(inert(label, one_line=True)), id=str(chat.id))  # titles are pastes

    def _show_hits(self, words: str) -> None:
        """List the messages containing ``words``, best match first."""
        try:
            hits = self.store.search(words)
        except HearthError as error:
            self.app.notify_error(error)
            return
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([self._hit_option(hit) for hit in hits])
        if not hits:
            options.add_option(Option(Content(inert(f"No message contains {words.strip()!r}.", one_line=True)),
                                      disabled=True))
        else:
            options.highlighted = 0

    @staticmethod
    def _hit_option(hit: SearchHit) -> Option:
        """``title · who: …snippet…`` with the matched words in bold; every piece made inert."""
        who = ROLE_NAMES.get(hit.role, hit.role)
        parts: list[Content] = [Content(inert(f"{hit.chat_title}  ·  {who}: ", one_line=True))]
        for piece, match in snippet_parts(hit.snippet):
            text = Content(inert(piece, one_line=True))
            parts.append(text.stylize("bold") if match else text)
        return Option(Content("").join(parts), id=f"{hit.chat_id}:{hit.message_id}")

    def _selected(self) -> tuple[int, int] | None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None:
            return None
        option = options.get_option_at_index(index)
        return (int(option.id.split(":")[0]), index) if option.id else None

    @on(OptionList.OptionSelected)
    def open_chat(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            chat, _, message = event.option.id.partition(":")
            self.dismiss((int(chat), int(message) if message else None))

    @on(Input.Changed, "#search")
    def search_changed(self) -> None:
        self.reload()

    @on(Input.Submitted, "#search")
    def open_first_hit(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None and options.option_count:
            options.action_select()

    def on_key(self, event: events.Key) -> None:
        """Up and down in the search field move through the list below it."""
        search = self.query_one("#search", Input)
        if search.has_focus and event.key in ("up", "down"):
            options = self.query_one(OptionList)
            if event.key == "down":
                options.action_cursor_down()
            else:
                options.action_cursor_up()
            event.stop()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_close(self) -> None:
        """Esc: out of the search field first (clearing it), then out of the screen."""
        search = self.query_one("#search", Input)
        if search.has_focus or search.value:
            search.value = ""
            self.query_one(OptionList).focus()
            return
        self.dismiss(None)

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

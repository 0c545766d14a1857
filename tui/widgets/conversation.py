"""Conversation widgets: a user message and an assistant reply that streams as Markdown.

Streamed reply text is already inert (engine.sanitize) when it arrives; text from the history
database is made inert here. While a reply streams, the text being written is a
:class:`~tui.widgets.stream_tail.StreamTail` (cheap to redraw a token at a time), and its complete
Markdown blocks move to the Markdown widget whenever the tail needs a layout anyway; when the
stream ends, the whole reply is rendered once more from the full text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, overload

from markdown_it import MarkdownIt
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region, Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownBlock, MarkdownFence

from engine.sanitize import inert
from tui.widgets.layout_size import keeps_lines_when_taller, set_by_layout
from tui.widgets.stream_tail import StreamTail, settled_length

STATUS_LABELS = {
    "stopped": "■ stopped",
    "error": "✖ failed",
    "streaming": "… interrupted",
}
"""The label under a reply that did not finish, by its stored status ("streaming" in the history
means the process ended while the reply was being written)."""


def _refreshed_once_mounted(base: type[MarkdownBlock]) -> Callable[..., MarkdownBlock]:
    """``base.refresh``, ignoring what is asked before the block is mounted (but a recompose).

    A block's content is set before it is mounted, and Textual posts those requests after the
    mount: the layout that placed and painted the new block (its parent's awaited mount asks for
    it) was followed ~35 ms later by a second layout and repaint of the conversation, for nothing
    (tests/test_streaming.py counts the frames of a block move)."""

    def refresh(self: MarkdownBlock, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> MarkdownBlock:
        if not self.is_mounted and not recompose:
            return self
        return base.refresh(self, *regions, repaint=repaint, layout=layout, recompose=recompose)

    return refresh


class _RangeBefore:
    """A block's ``source_range`` (lines of the Markdown's source, [start, end)) that remembers
    the one it had before it was last set, as ``_range_before``: Markdown.append sets the last
    block's range to the re-parsed one just before it asks the block to update itself
    (textual.widgets._markdown, 8.x)."""

    @overload
    def __get__(self, block: None, owner: type) -> _RangeBefore: ...
    @overload
    def __get__(self, block: MarkdownBlock, owner: type) -> tuple[int, int]: ...
    def __get__(self, block: MarkdownBlock | None, owner: type) -> tuple[int, int] | _RangeBefore:
        return self if block is None else block.__dict__["_source_range"]

    def __set__(self, block: MarkdownBlock, lines: tuple[int, int]) -> None:
        block.__dict__["_range_before"] = block.__dict__.get("_source_range")
        block.__dict__["_source_range"] = lines


def _unchanged(block: MarkdownBlock, reparsed: MarkdownBlock) -> bool:
    """Whether ``reparsed``, the reply's last block parsed again as text was appended, is
    ``block`` as it is (a block with :class:`_RangeBefore`).

    Each time complete blocks move to the Markdown widget, Textual re-parses from the start of its
    last block and updates that block from the result: a paragraph re-rendered, and a list, a
    quote or a table removed and mounted again, widget by widget, though it had not changed. The
    reply's Markdown is only appended whole lines (:func:`~tui.widgets.stream_tail.settled_length`
    cuts just after a newline), so lines already parsed never change: a block re-parsed to the
    same range is the same block. One that grew (a list going on after a blank line) updates."""
    return bool(block.__dict__.get("_range_before") == reparsed.source_range)


def _kept_when_unchanged(base: type[MarkdownBlock]) -> Callable[..., Coroutine[Any, Any, None]]:
    """``base._update_from_block``, doing nothing when the block is :func:`_unchanged`."""

    async def _update_from_block(self: MarkdownBlock, reparsed: MarkdownBlock) -> None:
        if not _unchanged(self, reparsed):
            await base._update_from_block(self, reparsed)

    return _update_from_block


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

    source_range = _RangeBefore()

    async def _update_from_block(self, block: MarkdownBlock) -> None:
        if not _unchanged(self, block):
            await super()._update_from_block(block)

    def action_copy_code(self) -> None:
        self.post_message(self.CopyRequested(self.code, "code block"))


def _laid_out_once(block: type[MarkdownBlock]) -> type[MarkdownBlock]:
    """``block`` laid out once when it is added while a reply streams, not two or three times:
    without the layout and repaint Textual asks for when a widget's virtual size changes
    (tui.widgets.layout_size), nor those it remembers from before its mount
    (:func:`_refreshed_once_mounted`), and not updated again when the next blocks come
    (:func:`_kept_when_unchanged`). Same class name, so the Markdown's CSS still applies. (Code
    fences scroll sideways and keep Textual's behaviour: a fence settling still costs a second
    layout, asked by its virtual size and by the label inside it.)"""
    return type(block.__name__, (block,), {
        "__module__": __name__, "virtual_size": set_by_layout(),
        "refresh": _refreshed_once_mounted(block),
        "source_range": _RangeBefore(), "_update_from_block": _kept_when_unchanged(block)})


@keeps_lines_when_taller
class ReplyMarkdown(Markdown):
    BLOCKS = {**{name: _laid_out_once(block) for name, block in Markdown.BLOCKS.items()},
              "fence": CodeBlock, "code_block": CodeBlock}

    virtual_size = set_by_layout()
    """No second layout or repaint each time the reply's Markdown grows by a block."""

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> ReplyMarkdown:
        """As Textual's, but a layout asked for without regions (Textual asks for one, with a
        repaint, when blocks are mounted) does not repaint the whole widget: it draws only its
        background, and the layout repaints every block it places or moves and the place of
        every block removed (``Compositor.reflow``). While a reply streams in a scrolled
        conversation, the repaint of the whole widget made each block that settled repaint
        every line of the reply on screen, not only the lines the terminal's move of them
        cannot show (tui.widgets.terminal_scroll)."""
        if layout and not regions and not recompose:
            repaint = False
            self.clear_cached_dimensions()  # (what a repaint does too: its height is measured anew)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)


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
    UserMessage.-found { border-left: thick $accent; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(inert(text), markup=False)
        self.text = text


@keeps_lines_when_taller
class ReplyView(Vertical):
    """An assistant reply: rendered Markdown and, when it did not finish, a status line.

    Args:
        text: the reply so far (str; made inert here).
        status: its stored status ("done", "stopped", "error", or "streaming" for one that was cut
            off); a reply about to stream is made with :meth:`start_stream`, which shows no label.
    """

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
    ReplyView > StreamTail { margin: 0; }
    ReplyView > .reply-status { color: $warning; height: auto; padding: 0 1 0 2; }
    ReplyView > .reply-status.-hidden { display: none; }
    ReplyView.-found { border-left: thick $accent; }
    """

    virtual_size = set_by_layout()
    """No second layout or repaint when the reply grows (tui.widgets.layout_size)."""

    def __init__(self, text: str = "", status: str = "done") -> None:
        super().__init__()
        self.text = text
        self.status = status
        self._settled = 0
        """Characters of ``text`` handed to the Markdown widget while streaming."""
        self._tail: StreamTail | None = None
        self._settling = False
        """A move of complete blocks to the Markdown widget is scheduled (:meth:`_settle`)."""
        self._lock = asyncio.Lock()
        """Held while the Markdown widget is being appended to or replaced."""

    def compose(self) -> ComposeResult:
        yield ReplyMarkdown(inert(self.text))
        yield Static(
            STATUS_LABELS.get(self.status, ""),
            classes="reply-status" + ("" if self.status in STATUS_LABELS else " -hidden"),
            markup=False,
        )

    @property
    def markdown(self) -> ReplyMarkdown:
        return self.query_one(ReplyMarkdown)

    async def start_stream(self) -> None:
        """Begin streaming into an empty reply: no status label, an ellipsis until text comes,
        and the tail's room (:data:`~tui.widgets.stream_tail.RESERVE_LINES`) below it."""
        self.status = "streaming"
        self.text = ""
        self._settled = 0
        self._set_label("")
        await self.markdown.update("")
        self._tail = StreamTail(on_typed=self._typed)
        await self.mount(self._tail, before=self.query_one(".reply-status"))
        # the room is made now, in the layout of the new messages before generation starts, not
        # by the first text: at a Pi-class share of a core, that layout of a long chat came just
        # as its next tokens did, 100-160 ms of wall time (bench/smooth_stream.py, turn 51)
        self._tail.reset("…", reserve=True)

    def write(self, fragment: str) -> None:
        """Append streamed text (a batch of tokens, already inert).

        Complete blocks move from the tail to the Markdown widget only when the tail has filled
        its room: that needs a layout anyway, and one layout then does both (a layout costs
        several times a redraw of the tail: bench/smooth_stream.py). The move awaits the
        Markdown widget, so it runs after this returns (:meth:`_settle`)."""
        tail = self._tail
        if tail is None or not fragment:
            return
        tail.close_lane()  # (what the generation thread drew comes first)
        first = not self.text
        self.text += fragment
        tail.cursor = True  # (not after the "…")
        # the first text replaces the "…" in its line: drawn at once, like the text after it
        full = tail.replace(fragment) if first else tail.extend(fragment)
        if not full:
            tail.open_lane()  # the next tokens, while they fit the room: drawn by the generation thread
            return
        if self._settling:
            return  # the move under way lays the tail out
        if settled_length(self.text[self._settled:]):
            self._settling = True
            self.call_later(self._settle)
        else:
            tail.grow()

    def reopen_lane(self) -> None:
        """(After a frame) Let the generation thread draw the next tokens again when the tail
        still has room on screen: a frame closes the lane, and until now only the next batch's
        drawing by the UI opened it again, so each layout of the growing reply also cost the UI
        a batch (about 12 a 600-token reply at full speed here)."""
        tail = self._tail
        if tail is not None and self.text and not self._settling and not self._lock.locked():
            tail.reopen_lane()

    def _typed(self, text: str) -> None:
        """Text the generation thread drew (tui.typing_lane), as the tail takes it."""
        self.text += text

    def close_lane(self) -> None:
        """Stop the generation thread drawing into the reply, and take what it drew (before a
        frame: the screen's widgets then hold what the terminal shows)."""
        if self._tail is not None:
            self._tail.close_lane()

    async def _settle(self) -> None:
        """Move the complete blocks of the text so far from the tail to the Markdown widget,
        in one frame."""
        async with self._lock:
            self._settling = False
            tail = self._tail
            if tail is None:
                return  # the reply has ended meanwhile (finish rendered it whole)
            unsettled = self.text[self._settled:]
            cut = settled_length(unsettled)
            if not cut:
                tail.grow()
                return
            self._settled += cut
            with self.app.batch_update():
                await self.markdown.append(unsettled[:cut])
                tail.close_lane()  # (text the generation thread drew meanwhile joins self.text first)
                tail.reset(self.text[self._settled:], reserve=True)

    async def finish(self, text: str, status: str, note: str = "") -> None:
        """End the stream, render the full reply once, and show how it ended."""
        self.close_lane()
        async with self._lock:  # after a move of blocks under way
            self.text = text
            self.status = status
            with self.app.batch_update():  # the full Markdown replaces the tail in one frame
                await self.markdown.update(inert(text))
                if self._tail is not None:
                    await self._tail.remove()
                    self._tail = None
        self._set_label(note or STATUS_LABELS.get(status, ""))

    def _set_label(self, shown: str) -> None:
        label = self.query_one(".reply-status", Static)
        label.update(shown)
        label.set_class(not shown, "-hidden")


def warm_up_markdown() -> None:
    """Parse a line of Markdown as a reply's blocks are parsed, once, before any reply: the
    linkify rule of markdown-it (Textual's Markdown parser, "gfm-like") compiles its regular
    expressions the first time it runs in a process, 5.6 ms of the UI thread on this machine's
    cores (3-5 times that on a Pi's), which otherwise fell on the first block that settled in the
    first reply, while its tokens streamed (a trace of the first reply's block moves)."""
    MarkdownIt("gfm-like").parse("A line, and www.example.org.")


Shown = tuple[str, str, str]
"""A message as the conversation keeps it off screen: (role, text, status)."""

KEEP_MOUNTED = 10
"""Messages kept as widgets at the end of a conversation. Textual's layout and every frame walk
all mounted widgets (a Markdown reply is 5-25 of them): measured here, a frame that repaints one
line cost 2.7 ms with 3 widgets and 10 ms with 1,000, a layout 60 µs per widget, so a 50-turn chat
made every streamed line cost a quarter of a second (bench/smooth_stream.py). Older messages wait
as text and are mounted a page at a time when the user scrolls to the top."""

PAGE = 8
"""Messages mounted per step when scrolling back."""


class EarlierMessages(Static, can_focus=True):
    """The line above the oldest mounted message: how many are earlier; Enter or a click (or
    scrolling to the top) shows more."""

    BINDINGS = [Binding("enter", "load", "Show earlier", show=False)]

    DEFAULT_CSS = """
    EarlierMessages { color: $text-muted; padding: 0 1; text-align: center; }
    EarlierMessages:focus { color: $accent; }
    EarlierMessages.-hidden { display: none; }
    """

    class Wanted(Message):
        """The user asked for earlier messages."""

    def set_count(self, count: int) -> None:
        self.update(f"↑ {count} earlier message{'s' if count != 1 else ''}: scroll up or press Enter")
        self.set_class(count == 0, "-hidden")

    def action_load(self) -> None:
        self.post_message(self.Wanted())

    def on_click(self) -> None:
        self.post_message(self.Wanted())


class SetAside(Widget):
    """Blank room as tall as the messages set aside while a reply streams (:class:`Conversation`),
    so what is below it stays where it was and the scrollbar is unchanged (its height and top
    margin are set from theirs)."""


class Conversation(VerticalScroll):
    """The messages of the open chat, the newest :data:`KEEP_MOUNTED` as widgets (older ones
    mounted a page at a time on demand), so a long chat costs each frame what a short one does."""

    virtual_size = set_by_layout()
    """No second layout or repaint when the content grows: the scrollbars and the anchor follow
    the new size in the layout that measured it (Widget._size_updated)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._earlier: list[Shown] = []
        """Messages above the mounted ones, oldest first."""
        self._aside: list[Widget] = []
        """Mounted messages hidden while a reply streams (:meth:`add`), oldest first."""
        self._aside_width = 0
        """The conversation's width (cells) when they were set aside."""

    def compose(self) -> ComposeResult:
        yield EarlierMessages(classes="-hidden")

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        """(Textual calls this in each layout, before the layout's frame is drawn.) The vertical
        scrollbar's new thumb is drawn in that frame, not in a frame of its own after it.

        A layout that grows the conversation moves the scrollbar's thumb (``Widget._scroll_update``
        refreshes it), but the frame that follows repaints only the regions whose widgets moved,
        and the scrollbar's stays where it was: its refresh went to the next frame, which then
        painted that one column, 1.4-1.7 ms of the UI thread after each layout while a reply
        streams (7 of a reply's 18 frames, timed in the real app at full speed). Its dirty region
        is handed to the compositor now instead (``Compositor.update_widgets``)."""
        changed = super()._size_updated(size, virtual_size, container_size, layout)
        bar = self._vertical_scrollbar
        if bar is not None and bar._repaint_required:
            compositor = self.screen._compositor
            if bar in compositor.visible_widgets:
                bar._repaint_required = False
                compositor.update_widgets({bar})
        return changed

    @property
    def earlier_count(self) -> int:
        return len(self._earlier)

    @staticmethod
    def _widget(message: Shown) -> Widget:
        role, text, status = message
        return UserMessage(text) if role == "user" else ReplyView(text, status)

    def _messages(self) -> list[Widget]:
        return [child for child in self.children if isinstance(child, UserMessage | ReplyView)]

    async def show(self, messages: list[Shown], at: int | None = None) -> None:
        """Replace the conversation with ``messages`` (oldest first). With ``at`` (an index into
        ``messages``: a search found it), that message is mounted too, scrolled to the top of
        the view and marked ``-found``; otherwise the view follows the end."""
        self._aside = []
        await self.remove_children([*self._messages(), *self.query_children(SetAside)])
        first = len(messages) - KEEP_MOUNTED
        if at is not None and 0 <= at < first:
            first = at  # mount from the found message on (the ones after it too: read on from there)
        first = max(first, 0)
        self._earlier = list(messages[:first])
        widgets = [self._widget(m) for m in messages[first:]]
        await self.mount_all(widgets)
        self.query_one(EarlierMessages).set_count(len(self._earlier))
        if at is None or not 0 <= at - first < len(widgets):
            self.anchor()
            return
        found = widgets[at - first]
        found.add_class("-found")
        self.release_anchor()
        self.call_after_refresh(lambda: self.scroll_to_widget(found, animate=False, top=True))

    async def clear(self) -> None:
        await self.show([])

    async def add(self, *widgets: Widget, streaming: bool = False) -> None:
        """Append message widgets at the end.

        With ``streaming`` (the last of ``widgets`` is a reply about to stream), the messages
        that are off screen above the end of the conversation are set aside until
        :meth:`bring_back`: hidden (``display: none``), and :class:`SetAside` room as tall as them
        in their place, in the layout that mounts ``widgets``. Each layout while a reply streams
        (every fourth line, and each block that settles) arranges every displayed widget, and a
        finished reply is 5-30 of them: with five earlier exchanges mounted a streamed token
        cost 0.78 ms of the UI thread, 0.60 with them set aside, about what it costs in a new
        chat (0.56; bench.ui_cost, medians of 3). They come back when the user scrolls up to
        where they were, when the conversation's width changes, and when the reply ends.
        """
        if streaming:
            self._set_aside()
        await self.mount_all(widgets)

    def _set_aside(self) -> None:
        """Hide the messages wholly above the last screenful of the conversation as it was last
        laid out (adding messages at the end only pushes them further up), and put a
        :class:`SetAside` of their height in their place."""
        messages = self._messages()
        if self._aside or not messages or not self.size.height:
            return
        top = self.virtual_size.height - self.size.height  # the first line of the last screenful
        count = 0
        while count < len(messages) - 1 and messages[count].virtual_region_with_margin.bottom <= top:
            count += 1
        first, kept = messages[0], messages[count]
        if not count or not all(message.virtual_region.height for message in messages[:count + 1]):
            return  # (a message not laid out yet has an empty region)
        # in a vertical layout the space between two widgets is the larger of their margins: the
        # room has the first message's top margin, so it starts where that message did, and ends
        # where the first kept message's top margin begins
        room = SetAside()
        room.styles.margin = (first.styles.margin.top, 0, 0, 0)
        room.styles.height = kept.virtual_region.y - kept.styles.margin.top - first.virtual_region.y
        self._aside, self._aside_width = messages[:count], self.size.width
        self.mount(room, before=first)
        for message in self._aside:
            message.display = False

    async def bring_back(self) -> None:
        """Show the messages set aside by :meth:`add` again, in place of their room."""
        if not self._aside:
            return
        aside, self._aside = self._aside, []
        for message in aside:
            message.display = True
        await self.remove_children(SetAside)

    def on_resize(self, event: events.Resize) -> None:
        # (a Resize also comes when the content grows; at another width the heights of the
        # messages set aside are not known until they are laid out)
        if self._aside and event.size.width != self._aside_width:
            self.call_later(self.bring_back)

    async def trim(self) -> None:
        """Unmount the oldest messages beyond :data:`KEEP_MOUNTED` (kept as text), when the view
        is at the end and a page has built up (so reading back is never disturbed)."""
        mounted = self._messages()
        if len(mounted) < KEEP_MOUNTED + PAGE or not self.is_vertical_scroll_end:
            return
        old = mounted[:-KEEP_MOUNTED]
        for widget in old:  # (role, text, status) as the history holds them
            if isinstance(widget, UserMessage):
                self._earlier.append(("user", widget.text, "done"))
            elif isinstance(widget, ReplyView):
                self._earlier.append(("assistant", widget.text, widget.status))
        await self.remove_children(old)
        self.query_one(EarlierMessages).set_count(len(self._earlier))

    async def load_earlier(self) -> None:
        """Mount the previous :data:`PAGE` messages above the oldest one, keeping the view on
        what it showed."""
        if not self._earlier:
            return
        page, self._earlier = self._earlier[-PAGE:], self._earlier[:-PAGE]
        marker = self.query_one(EarlierMessages)
        marker.set_count(len(self._earlier))
        before = self.max_scroll_y - self.scroll_y
        await self.mount_all([self._widget(m) for m in page], after=marker)
        self.release_anchor()
        self.call_after_refresh(lambda: self.scroll_to(y=self.max_scroll_y - before, animate=False))

    @on(EarlierMessages.Wanted)
    async def _wanted(self) -> None:
        await self.load_earlier()

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def _scrolled(self, old: float, new: float) -> None:
        if self._aside and new < self.query_children(SetAside).first().virtual_region_with_margin.bottom:
            self.call_later(self.bring_back)  # the user scrolled up to them
        if new <= 0 < old and self._earlier:  # the user scrolled up to the top
            self.call_later(self.load_earlier)

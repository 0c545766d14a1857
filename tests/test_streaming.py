"""A reply that streams (issue: smooth and cheap): complete Markdown blocks settle into the
Markdown widget, the block being written is a cheap plain-text tail, nothing is lost or doubled
by batching, the reply shows its true state, and a long chat keeps few widgets mounted."""

from __future__ import annotations

import contextlib
import gc
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets.markdown import MarkdownBlock

from engine import paths
from engine.chat.history import HistoryStore
from tests.apphelpers import ask, make_app, make_settings, wait_until
from tui.collector import YOUNG_WHILE_STREAMING
from tui.screens.chat import ChatScreen
from tui.screens.chats import ChatsScreen
from tui.widgets import stream_tail
from tui.widgets.conversation import (
    KEEP_MOUNTED,
    PAGE,
    Conversation,
    EarlierMessages,
    ReplyView,
    SetAside,
    UserMessage,
)
from tui.widgets.status_bar import StatusBar
from tui.widgets.stream_tail import CURSOR, RESERVE_LINES, StreamTail, settled_length

SGR = re.compile(r"\x1b\[[0-9;]*m")
"""A colour or attribute sequence (ECMA-48 SGR), as written around drawn text."""

LONG_REPLY = """Here is a plan in three parts.

1. **Check the logs** with `journalctl -u lighthouse`.
2. Restart the service:
   it comes back in a second.
3. Watch it.

```python
def beam(period_s: float) -> str:

    return f"one flash every {period_s} s"
```

| setting | value |
| --- | --- |
| beam | 12 s |
| range | 18 nm |

~~~
a tilde fence with ``` inside

still code
~~~
- a list without blank lines
- second item
- third item

> A quote that runs on for a while, long enough to wrap across more than one line of the
> terminal, so the tail has to re-wrap its last line as words arrive one after another.

The end, with ünïcödé and 中文 text."""


# -- where a block settles ------------------------------------------------------------------


@pytest.mark.parametrize("text, settled", [
    ("", 0),
    ("a paragraph still being writ", 0),
    ("a paragraph\n", 0),  # the paragraph may go on
    ("one\n\ntwo", len("one\n\n")),
    ("one\n\ntwo\n\n", len("one\n\ntwo\n\n")),
    ("```\ncode\n\nmore code\n", 0),  # a blank line inside a fence settles nothing
    ("```\ncode\n\n```\nafter", len("```\ncode\n\n```\n")),  # the closing fence does
    ("````\n```\n\n````\n", len("````\n```\n\n````\n")),  # a shorter run does not close it
    ("~~~\n```\n\n~~~\n\nx", len("~~~\n```\n\n~~~\n\n")),
    ("```py\nx\n```  \n", len("```py\nx\n```  \n")),
    ("```\nx\n``` not a close\n\n", 0),
    ("text\n\n```\nopen fence\n\n", len("text\n\n")),
])
def test_settled_length(text: str, settled: int) -> None:
    assert settled_length(text) == settled


# -- the reply widget, fed in batches of every size ---------------------------------------------


class ReplyApp(App):
    def compose(self) -> ComposeResult:
        yield ReplyView()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_batched_stream_loses_and_doubles_nothing(seed: int) -> None:
    """However the tokens are batched, what is on screen (settled Markdown source + tail) is the
    text so far at every step, and the end is the Markdown of exactly the whole text."""
    rng = random.Random(seed)
    app = ReplyApp()
    async with app.run_test(size=(80, 24)) as pilot:
        reply = app.query_one(ReplyView)
        await reply.start_stream()
        tail = reply.query_one(StreamTail)
        assert tail.text == "…" and reply.markdown.source == ""
        position = 0
        while position < len(LONG_REPLY):
            size = rng.choice([1, 1, 2, 3, 5, 8, 13, 40])
            reply.write(LONG_REPLY[position:position + size])
            position += size
            if not reply._lock.locked():  # (a move of blocks shows them in one frame)
                assert reply.markdown.source + tail.text == LONG_REPLY[:position]
            if rng.random() < 0.3:
                await pilot.pause()
        assert reply.markdown.source  # blocks settled while streaming, not only at the end
        await reply.finish(LONG_REPLY, "done")
        await pilot.pause()
        assert not reply.query(StreamTail)
        assert reply.markdown.source == LONG_REPLY
        kinds = {type(block).__name__ for block in reply.markdown.query("*")}
        assert {"MarkdownTable", "MarkdownOrderedList", "MarkdownBulletList", "CodeBlock",
                "MarkdownBlockQuote"} <= kinds, kinds


@contextlib.asynccontextmanager
async def streaming_reply() -> AsyncIterator[tuple[Pilot, ReplyView, StreamTail]]:
    """A reply that has started streaming (its "…" shown) in a 40x12 app."""
    app = ReplyApp()
    async with app.run_test(size=(40, 12)) as pilot:
        reply = app.query_one(ReplyView)
        await reply.start_stream()
        await pilot.pause()
        yield pilot, reply, reply.query_one(StreamTail)


def shown(tail: StreamTail, y: int) -> str:
    """Line ``y`` of the tail's text (without the cursor)."""
    return tail.render_line(y).text.replace(CURSOR, "").strip()


async def test_every_token_moves_the_cursor_even_a_newline_or_a_space() -> None:
    """A cursor follows the text while it streams, so a token that is only a newline or a space
    changes the screen (a paragraph break is two such tokens); the "…" before the first text has
    none, and the finished reply neither."""
    async with streaming_reply() as (pilot, reply, tail):

        def lines() -> list[str]:
            return [tail.render_line(y).text.rstrip() for y in range(tail.line_count + 1)]

        assert lines()[0] == "…"
        reply.write("A paragraph.")
        assert lines()[0] == "A paragraph." + CURSOR
        reply.write("\n")
        assert lines()[:2] == ["A paragraph.", CURSOR]
        reply.write("\n")
        assert lines()[:3] == ["A paragraph.", "", CURSOR]
        reply.write(" ")
        assert lines()[2] == " " + CURSOR
        reply.write("x" * (tail.size.width - 1))  # the line full to its last cell
        assert lines()[2:4] == [" " + "x" * (tail.size.width - 1), CURSOR]
        assert sum(line.count(CURSOR) for line in lines()) == 1
        await reply.finish(reply.text, "done")
        await pilot.pause()
        assert CURSOR not in reply.markdown.source and not reply.query(StreamTail)


async def test_tail_redraws_only_changed_lines() -> None:
    """The tail has its room from the start: the first text, and new lines after it, are drawn
    into the room below it without a layout; the line that fills the room is drawn too, and then
    asks for the layout that makes room for RESERVE_LINES more; text running past the room is
    shown by that layout."""
    async with streaming_reply() as (pilot, reply, tail):
        assert tail.size.height == 1 + RESERVE_LINES  # the "…" and the room below it
        tail._layout_required = False
        reply.write("first line of text\nsecond")  # the first text: no layout
        assert not tail._layout_required
        reply.write(" word")
        assert not tail._layout_required
        assert [shown(tail, 0), shown(tail, 1)] == ["first line of text", "second word"]
        assert shown(tail, 2) == ""  # the room is blank
        reply.write("\nthree\nfour")
        assert not tail._layout_required and tail.line_count == 4
        assert [shown(tail, y) for y in (2, 3)] == ["three", "four"]
        reply.write(" and more words that wrap past forty columns")
        assert tail.line_count == 1 + RESERVE_LINES and tail._layout_required
        assert shown(tail, 3) == "four and more words that wrap past"
        assert shown(tail, 4) == "forty columns"  # the room's last line, drawn before the layout
        await pilot.pause()
        assert tail.size.height == 5 + RESERVE_LINES
        reply.write("\n" + "\n".join("abcdef"))  # past the room in one batch
        assert tail.line_count == 11 and tail._layout_required
        await pilot.pause()
        assert tail.size.height == 11 + RESERVE_LINES
        assert [shown(tail, y) for y in range(5, 11)] == list("abcdef")


async def test_a_replys_first_text_needs_no_layout() -> None:
    """The layout that places a new reply makes the tail's room too: the first tokens are drawn
    without another layout of the screen (at a Pi-class share of a core, such a layout at turn
    51 of a chat took 100-160 ms of wall time, just as the next tokens came)."""
    app = ReplyApp()
    async with app.run_test(size=(80, 24)) as pilot:
        reply = app.query_one(ReplyView)
        await reply.start_stream()
        await pilot.pause()
        screen = app.screen
        layouts: list[None] = []
        layout = screen._refresh_layout

        def counted_layout(*args: object, **kwargs: object) -> None:
            layouts.append(None)
            layout(*args, **kwargs)  # type: ignore[arg-type]

        screen._refresh_layout = counted_layout  # type: ignore[method-assign]
        for word in "The first words of a reply, and then a second line\nof them".split(" "):
            reply.write(word + " ")
            await pilot.pause()
        assert layouts == []
        assert "second line" in "".join(line.text for line in reply.query_one(StreamTail).render_lines(
            Region(0, 0, 80, 3)))


async def test_a_layout_that_only_makes_them_taller_keeps_the_replys_rendered_lines() -> None:
    """When the tail grows (and the reply with it), the lines the reply, its Markdown and the tail
    had rendered are kept, not rendered again (tui.widgets.layout_size.keeps_lines_when_taller):
    they are the same at any height. What they show then equals a fresh rendering."""
    async with streaming_reply() as (pilot, reply, tail):
        reply.write("A first paragraph.\n\nthe second\nand a third\nfourth")  # fills the room:
        await pilot.pause(0.2)  # the paragraph moves to the Markdown
        widgets = (reply, reply.markdown, tail)

        def rendered(widget: Widget) -> list[Strip]:
            return widget.render_lines(Region(0, 0, *widget.outer_size))

        before = {widget: rendered(widget) for widget in widgets}
        before[tail] = before[tail][:1]  # (the lines of the tail from the cursor's on change)
        height, settled = tail.outer_size.height, reply.markdown.source
        reply.write("\n4\n5\n6\n7")  # fills the tail's room: it grows, by a layout
        assert tail._layout_required
        await pilot.pause(0.2)
        assert tail.outer_size.height > height and reply.markdown.source == settled  # (no block moved)
        for widget, old in before.items():
            kept = sum(new is line for new, line in zip(rendered(widget), old, strict=False))
            assert kept == len(old), (widget, kept, len(old))
            now = rendered(widget)
            widget._styles_cache.clear()
            assert [line.text for line in rendered(widget)] == [line.text for line in now]


async def test_the_cursor_stays_when_all_the_text_moves_to_the_markdown() -> None:
    """When the blocks that move to the Markdown widget are all the text there is (a paragraph
    break or a closing fence just as the tail filled), the empty tail still shows the cursor."""
    async with streaming_reply() as (pilot, reply, tail):
        reply.write("1\n2\n3\n4\nA paragraph.\n\n")  # fills the room: the paragraphs move
        await pilot.pause(0.2)
        assert reply.markdown.source == "1\n2\n3\n4\nA paragraph.\n\n" and tail.text == ""
        assert tail.render_line(0).text.rstrip() == CURSOR


async def test_only_the_lines_that_changed_are_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token that lengthens the last line writes only its own cells and the cursor's; a newline
    or a word that wraps, only the cells it changes on the lines it changes (the cursor's cell
    wiped, the word and the cursor on the next line); text other than printable ASCII draws the
    lines from the first that changed, not the line above it as well."""
    drawn: list[tuple[int, int] | tuple[int, int, str]] = []

    def record_lines(widget: Widget, first: int, count: int) -> bool:
        drawn.append((first, count))
        return True

    def record_text(widget: Widget, y: int, x: int, cells: int, rendered: str) -> bool:
        text = SGR.sub("", rendered)
        assert cell_len(text) == cells
        drawn.append((y, x, text))
        return True

    def record_spans(widget: Widget, spans: list[tuple[int, int, Strip]]) -> bool:
        drawn.extend((y, x, cells.text) for y, x, cells in spans)
        return True

    monkeypatch.setattr(stream_tail, "draw_now", record_lines)
    monkeypatch.setattr(stream_tail, "draw_text", record_text)
    monkeypatch.setattr(stream_tail, "draw_spans", record_spans)
    async with streaming_reply() as (pilot, reply, tail):
        reply.write("one two three four five six seven eight nine")  # two lines at 37 columns
        await pilot.pause()
        assert tail.line_count == 2 and not tail.full
        drawn.clear()
        reply.write(" ten")
        reply.write("\n")
        reply.write("x")
        reply.write("yz")
        reply.write(" " + "v" * 30)
        reply.write(" abcd")  # wraps: the cursor's cell wiped, the word and the cursor written
        reply.write(" café")
        reply.write(" " + "w" * 30)  # wraps
        assert drawn == [(1, 10, " ten" + CURSOR), (1, 14, " "), (2, 0, CURSOR), (2, 0, "x" + CURSOR),
                         (2, 1, "yz" + CURSOR), (2, 3, " " + "v" * 30 + CURSOR), (2, 34, " "),
                         (3, 0, "abcd" + CURSOR), (3, 1), (3, 2)]
        assert [shown(tail, y) for y in range(5)] == ["one two three four five six seven", "eight nine ten",
                                                      "xyz " + "v" * 30, "abcd café", "w" * 30]



async def test_tokens_drawn_in_place_are_in_the_line_whatever_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens drawn in place are joined to the tail's last line only when something reads the
    lines: a frame rendering it, a change of style (a new theme), or the next token that is not
    drawn in place."""
    drawn: list[str] = []
    monkeypatch.setattr(stream_tail, "draw_text",
                        lambda widget, y, x, cells, rendered: drawn.append(SGR.sub("", rendered)) or True)
    async with streaming_reply() as (pilot, reply, tail):
        reply.write("one two")
        await pilot.pause()
        drawn.clear()
        for token in (" three", " four"):
            reply.write(token)
        assert drawn == [" three" + CURSOR, " four" + CURSOR]  # (in place: nothing else drawn)
        assert shown(tail, 0) == "one two three four"  # a frame renders the line
        reply.write(" five")
        tail.notify_style_update()
        assert shown(tail, 0) == "one two three four five"
        reply.write(" six")
        reply.write("\n")  # not in place: re-wraps the line, with the tokens before it
        assert [strip.text for strip in tail._wrapped[0]] == ["one two three four five six"]
        assert tail.text == reply.text == "one two three four five six\n"

def frames_of(screen: Screen) -> list[str]:
    """The layouts and repaints ``screen`` does from now on, in order ("layout", "repaint"; a
    layout's own repaint is counted too)."""
    calls: list[str] = []
    layout, repaint = screen._refresh_layout, screen._compositor_refresh

    def counted_layout(*args: object, **kwargs: object) -> None:
        calls.append("layout")
        layout(*args, **kwargs)  # type: ignore[arg-type]

    def counted_repaint() -> None:
        calls.append("repaint")
        repaint()

    screen._refresh_layout = counted_layout  # type: ignore[method-assign]
    screen._compositor_refresh = counted_repaint  # type: ignore[method-assign]
    return calls


async def test_a_block_moving_to_the_markdown_costs_one_layout_and_one_repaint() -> None:
    """The frame that moves a finished paragraph to the Markdown widget lays the screen out and
    repaints it once: no second layout for the new block's request from before its mount, no
    second repaint for the virtual sizes that layout set (tui.widgets.layout_size)."""
    app = ReplyApp()
    async with app.run_test(size=(40, 20)) as pilot:
        reply = app.query_one(ReplyView)
        await reply.start_stream()
        reply.write("A first paragraph of words.\n\nThe next one")
        await pilot.pause(0.2)
        calls = frames_of(app.screen)
        reply.write("\ngoes\non\nfor\nlines")  # outgrows the tail's room: the paragraph moves
        await pilot.pause(0.3)
        assert reply.markdown.source == "A first paragraph of words.\n\n"
        assert calls == ["layout", "repaint"], calls


async def test_the_scrollbar_moved_by_a_layout_is_painted_in_that_layouts_frame() -> None:
    """A tail that grows in a conversation taller than the view moves the scrollbar's thumb: the
    layout's one repaint paints it, with no frame of its own after (tests/test_terminal.py checks
    in a real terminal that the screen then equals a full repaint)."""

    class ChatApp(App):
        def compose(self) -> ComposeResult:
            yield Conversation()

    app = ChatApp()
    async with app.run_test(size=(40, 12)) as pilot:
        conversation = app.query_one(Conversation)
        await conversation.add(*[UserMessage(f"question {n}") for n in range(6)])
        conversation.anchor()
        reply = ReplyView("", "streaming")
        await conversation.add(reply)
        await reply.start_stream()
        await pilot.pause(0.3)
        assert conversation.max_scroll_y > 0 and conversation.is_vertical_scroll_end
        bar = conversation.vertical_scrollbar
        position = bar.position
        calls = frames_of(app.screen)
        reply.write("one\ntwo\nthree\nfour\nfive")  # fills the tail's room: it grows
        await pilot.pause(0.3)
        assert bar.position > position and conversation.is_vertical_scroll_end
        assert calls == ["layout", "repaint"], calls


async def test_settled_blocks_are_not_rebuilt_when_more_blocks_come() -> None:
    """A block in the Markdown widget stays as it is when the next blocks settle after it (Textual
    re-parses the last block each time: a list was mounted again, a paragraph and a fence
    re-rendered), and a list that goes on after a blank line is updated to hold its new item."""
    app = ReplyApp()
    async with app.run_test(size=(60, 20)) as pilot:
        reply = app.query_one(ReplyView)
        await reply.start_stream()

        async def settle(text: str) -> list[MarkdownBlock]:
            reply.write(text)
            await pilot.pause(0.3)
            return [child for child in reply.markdown.children if isinstance(child, MarkdownBlock)]

        assert len((await settle("- one\n- two\n\n"))[0].children) == 2
        grown, paragraph = await settle("- three\n\nx\ny\nz\n\n")
        assert len(grown.children) == 3  # the list went on: updated
        shown = paragraph._content
        *_, listed = await settle("- a\n- b\n\n\n")
        assert paragraph._content is shown  # not re-rendered
        *_, after_list, text = await settle("A paragraph\nthat\ngoes\non\n\n")
        assert after_list is listed  # not removed and mounted again
        shown = text._content
        *_, fence = await settle("```\ncode\n```\n\n\n\n")
        assert text._content is shown
        highlighted = fence._content
        blocks = await settle("more\nlines\nof\ntext\n\n")
        assert blocks[-2] is fence and fence._content is highlighted
        assert [type(block).__name__ for block in blocks] == [
            "MarkdownBulletList", "MarkdownParagraph", "MarkdownBulletList", "MarkdownParagraph",
            "CodeBlock", "MarkdownParagraph"]
        assert reply.markdown.source == reply.text


@pytest.mark.parametrize("width", [20, 41, 80])
async def test_tail_wraps_appended_text_as_a_whole_wrap_would(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail re-wraps only the last two lines of the line being written, and a token that only
    lengthens the last line is appended to it without a wrap: after any batching, its lines
    equal a fresh wrap of the whole text (CJK, words longer than the line, tabs)."""
    words = LONG_REPLY.replace("\n\n", "\n").split(" ") + ["x" * 100, "中文" * 30, "a\tb"]
    in_place: list[int] = []
    monkeypatch.setattr(stream_tail, "draw_text", lambda widget, y, x, cells, rendered: in_place.append(x) or True)

    class TailApp(App[None]):
        def compose(self) -> ComposeResult:
            yield StreamTail()

    for seed in range(8):
        rng = random.Random(seed)
        text = " ".join(rng.choice(words) for _ in range(300))
        async with TailApp().run_test(size=(width, 30)) as pilot:
            tail = pilot.app.query_one(StreamTail)
            tail.reset("", reserve=True)
            tail.cursor = True
            await pilot.pause()
            position = 0
            while position < len(text):
                size = rng.choice([1, 2, 3, 7, 20])
                if tail.extend(text[position:position + size]):
                    tail.grow()
                position += size
            appended = [[strip.text for strip in lines] for lines in tail._wrapped]
            whole = [[strip.text for strip in tail._wrap(source)] for source in tail._sources]
            assert appended == whole and tail.text == text
    assert len(in_place) > 300  # (of ~2,000 batches)


# -- the reply's state while it streams, on the real model ---------------------------------------


@pytest.mark.model
async def test_streaming_reply_shows_no_status_and_live_figures(gguf_path: Path) -> None:
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 400}))
    thresholds = gc.get_threshold()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_until(pilot, lambda: screen.app.session.backend.loaded)
        await ask(pilot, "Write a long story about a lighthouse keeper and a storm.")
        await wait_until(pilot, lambda: screen.query(ReplyView) and len(screen.query_one(ReplyView).text) > 60)
        reply = screen.query_one(ReplyView)
        label = reply.query_one(".reply-status")
        assert not label.display and str(label.render()) == ""  # no "interrupted" while it streams
        assert gc.get_freeze_count() > 0  # the older objects wait out the reply (tui.collector)
        assert gc.get_threshold() == (YOUNG_WHILE_STREAMING, *thresholds[1:])
        bar = str(screen.query_one(StatusBar).render())
        used = int(bar.split("ctx ")[1].split("/")[0])
        assert used > 20, bar  # the first reply's context figure is live, not 0
        assert "tok/s" in bar
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.streaming)
        assert label.display and "stopped" in str(label.render())
        assert gc.get_freeze_count() == 0  # handed back to the collector
        assert gc.get_threshold() == thresholds
        assert reply.markdown.source == reply.text


@pytest.mark.model
async def test_loading_every_reply_and_the_kv_state_run_on_one_engine_thread(
        gguf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp (OpenMP) keeps a team of threads per calling thread; replies from several
    threads made the second reply on run 20-35 % slower (tui.engine_thread). The model's load,
    each reply (in two chats) and the KV state saved when a chat is left all run on the one
    thread named hearth-engine."""
    import threading

    from engine.chat.llama import LlamaBackend

    ran_on: list[tuple[str, int, str]] = []

    def recorded(name: str):
        method = getattr(LlamaBackend, name)

        def wrapper(self, *args, **kwargs):
            thread = threading.current_thread()
            ran_on.append((name, thread.ident, thread.name))
            return method(self, *args, **kwargs)
        monkeypatch.setattr(LlamaBackend, name, wrapper)

    for name in ("load", "stream", "save_state"):
        recorded(name)
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 8}))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.app.session.backend.loaded)
        for n, prompt in enumerate(["Say hello.", "Say goodbye.", "Name a colour."]):
            if n == 2:
                await pilot.press("ctrl+n")  # a new chat: the one left has its KV state saved
                await wait_until(pilot, lambda: any(name == "save_state" for name, _, _ in ran_on))
            await ask(pilot, prompt)
            await wait_until(pilot, lambda n=n: sum(name == "stream" for name, _, _ in ran_on) == n + 1
                             and not screen.streaming)
        ran_before_exit = list(ran_on)  # (at exit the state is saved on the UI thread: no compute)
    names = [name for name, _, _ in ran_before_exit]
    assert names.count("stream") == 3 and "load" in names and "save_state" in names, names
    threads = {(ident, thread) for _, ident, thread in ran_before_exit}
    assert len(threads) == 1 and threads.pop()[1].startswith("hearth-engine"), ran_before_exit


# -- a long chat keeps few widgets ------------------------------------------------------------


class ConversationApp(App):
    def compose(self) -> ComposeResult:
        yield Conversation()


async def test_messages_off_screen_are_set_aside_while_a_reply_streams() -> None:
    """While a reply streams, the messages above the last screenful are hidden (each layout
    arranges every displayed widget) behind room of their height: what stays does not move, and
    they come back when the user scrolls up to them."""
    app = ConversationApp()
    async with app.run_test(size=(80, 24)) as pilot:
        conversation = app.query_one(Conversation)
        await conversation.show([m for n in range(6) for m in (
            ("user", f"question {n}", "done"), ("assistant", f"answer {n}\n\n" + LONG_REPLY, "done"))])
        await pilot.pause(0.3)
        before = {id(w): w.virtual_region for w in conversation.children}
        messages = list(conversation.query("UserMessage, ReplyView"))
        reply = ReplyView()
        await conversation.add(UserMessage("go"), reply, streaming=True)
        await reply.start_stream()
        await pilot.pause(0.3)
        aside = [w for w in messages if not w.display]
        assert 0 < len(aside) < len(messages) and aside == messages[:len(aside)]
        room = conversation.query_one(SetAside)
        assert room.display and room.virtual_region.y == before[id(messages[0])].y
        kept = messages[len(aside):]
        assert [w.virtual_region for w in kept] == [before[id(w)] for w in kept]  # nothing moved
        assert all(w.virtual_region_with_margin.bottom <= conversation.scroll_y for w in aside[-1:])
        height = conversation.virtual_size.height
        reply.write("Some words of the reply.")
        # the user reads back, up to the last message set aside (not to the top: that mounts
        # the earlier ones)
        conversation.scroll_to(y=room.virtual_region.bottom - 2, animate=False)
        await pilot.pause(0.3)
        assert all(w.display for w in messages) and not conversation.query(SetAside)
        assert [w.virtual_region for w in messages] == [before[id(w)] for w in messages]
        assert conversation.virtual_size.height == height
        # set aside again for the next reply; a new width brings them back (their heights change)
        conversation.scroll_end(animate=False)
        await pilot.pause(0.3)
        await conversation.add(UserMessage("again"), ReplyView(), streaming=True)
        await pilot.pause(0.3)
        assert conversation.query(SetAside) and not messages[0].display
        await pilot.resize_terminal(100, 24)
        await pilot.pause(0.3)
        assert all(w.display for w in messages) and not conversation.query(SetAside)


ANSWER_TAIL = "\n\n- a\n- b"


def _write_chat(turns: int) -> None:
    store = HistoryStore(paths.history_db_path())
    chat = store.create_chat("long")
    for n in range(1, turns + 1):
        store.add_message(chat, "user", f"question {n}")
        store.add_message(chat, "assistant", f"answer **{n}**{ANSWER_TAIL}")
    store.close()


@pytest.mark.model
async def test_long_chat_mounts_the_newest_messages_and_pages_back(gguf_path: Path) -> None:
    _write_chat(30)
    app = make_app(gguf_path, make_settings(chat={"max_tokens": 8}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatsScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen.query(UserMessage))
        screen = app.screen
        conversation = screen.query_one(Conversation)
        marker = conversation.query_one(EarlierMessages)
        # the messages can be queried as soon as they are added, before show() has finished
        # mounting them and counted the earlier ones
        await wait_until(pilot, lambda: marker.display)

        def texts() -> list[str]:
            return [w.text.removesuffix(ANSWER_TAIL) for w in conversation.query("UserMessage, ReplyView")]

        assert len(texts()) == KEEP_MOUNTED
        assert texts()[-1] == "answer **30**" and texts()[0] == f"question {30 - KEEP_MOUNTED // 2 + 1}"
        assert f"{60 - KEEP_MOUNTED} earlier messages" in str(marker.render())
        # scrolling to the top (here: focusing the marker, which scrolls it into view) mounts the
        # previous page above, in order, keeping the view where it was
        marker.focus()
        await wait_until(pilot, lambda: len(texts()) == KEEP_MOUNTED + PAGE)
        await wait_until(pilot, lambda: conversation.scroll_y > 0)
        assert texts()[0] == f"question {30 - (KEEP_MOUNTED + PAGE) // 2 + 1}"
        assert texts()[-1] == "answer **30**"
        assert f"{60 - KEEP_MOUNTED - PAGE} earlier messages" in str(marker.render())
        # Enter on the marker mounts another page
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(texts()) == KEEP_MOUNTED + 2 * PAGE)
        # a new reply at the end: the view follows it, then the oldest mounted ones are let go
        conversation.scroll_end(animate=False)
        await pilot.pause()
        brought_back: list[int] = []  # messages set aside while it streamed, when it ended
        bring_back = conversation.bring_back

        async def counted() -> None:
            brought_back.append(len(conversation._aside))
            await bring_back()
        conversation.bring_back = counted  # type: ignore[method-assign]
        await ask(pilot, "Say hi.")
        await wait_until(pilot, lambda: not screen.streaming and texts()[-2] == "Say hi.")
        assert brought_back and brought_back[0] > 0, brought_back
        # (styles, not .display: the oldest are being unmounted by trim(), which .display tells too)
        assert all(w.styles.display != "none" for w in conversation.query("UserMessage, ReplyView"))
        assert not conversation.query(SetAside)
        await wait_until(pilot, lambda: len(texts()) == KEEP_MOUNTED)
        # (the widgets leave the DOM before trim() has finished removing them and counted them)
        await wait_until(pilot, lambda: f"{62 - KEEP_MOUNTED} earlier messages" in str(marker.render()))
        # and they come back, in order, when scrolled to
        while conversation.earlier_count:
            await conversation.load_earlier()
        all_texts = texts()
        assert all_texts[:4] == ["question 1", "answer **1**", "question 2", "answer **2**"]
        assert len(all_texts) == 62 and all_texts[-2] == "Say hi."
        assert not marker.display

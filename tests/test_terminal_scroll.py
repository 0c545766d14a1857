"""tui.widgets.terminal_scroll's compositor: a frame that repaints some lines renders only the
widgets on them, and writes exactly what Textual's own compositor writes. (The terminal's move of
the lines is checked in a real terminal: tests/test_terminal.py.)"""

from __future__ import annotations

import pytest
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget

from tui.widgets.conversation import Conversation, ReplyView, UserMessage
from tui.widgets.terminal_scroll import RowCompositor, TerminalScrollScreen

REPLY = ("A paragraph that wraps over more than one line of the terminal, " * 3 + "\n\n"
         "- a list item\n- and another, **bold**\n\n```python\nprint('code')\n```\n\n"
         "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n") * 3


class Chat(TerminalScrollScreen):
    SCROLLED_BY_TERMINAL = Conversation

    def compose(self) -> ComposeResult:
        yield Conversation()
        yield Widget(id="below")


class ChatApp(App[None]):
    CSS = "#below { height: 3; background: red; }"

    def get_default_screen(self) -> Chat:
        return Chat(id="_default")


@pytest.mark.parametrize("regions", [
    [Region(0, 17, 80, 4)],                         # the lines a layout brings in at the bottom
    [Region(0, 3, 80, 2), Region(0, 12, 80, 5)],    # a block that settled, and the tail
    [Region(79, 0, 1, 21), Region(0, 21, 80, 1)],   # the scrollbar's column (every line)
    [Region(5, 8, 10, 3)],                          # part of some lines
])
async def test_a_partial_frame_is_what_textuals_compositor_writes(regions: list[Region]) -> None:
    app = ChatApp()
    async with app.run_test(size=(80, 24)) as pilot:
        conversation = app.screen.query_one(Conversation)
        for n in range(3):
            await conversation.add(UserMessage(f"question {n}"), ReplyView(REPLY))
        conversation.scroll_end(animate=False)
        await pilot.pause()
        compositor = app.screen._compositor
        assert isinstance(compositor, RowCompositor)
        rendered = {}
        for name, get_renders in (("rows", RowCompositor._get_renders), ("textual", Compositor._get_renders)):
            compositor._dirty_regions.clear()
            compositor._dirty_regions.update(regions)
            calls: list[tuple[Widget, int]] = []
            original = Widget.render_lines

            def counted(widget: Widget, crop: Region, original=original, calls=calls) -> list:
                calls.append((widget, crop.height))
                return original(widget, crop)

            Widget.render_lines = counted  # type: ignore[method-assign]
            compositor._get_renders = get_renders.__get__(compositor)  # type: ignore[method-assign]
            try:
                update = compositor.render_update()
            finally:
                Widget.render_lines = original  # type: ignore[method-assign]
                del compositor._get_renders
            assert update is not None
            rendered[name] = (update.render_segments(app.console), calls)
        assert rendered["rows"][0] == rendered["textual"][0]
        # only the widgets on those lines were rendered, and only where no widget in front covers
        # them (Textual renders every widget whose clip meets them, whole: every widget on screen
        # in the conversation, and the screen behind them all)
        textual_lines = sum(height for _, height in rendered["textual"][1])
        row_lines = sum(height for _, height in rendered["rows"][1])
        assert row_lines < textual_lines, rendered
        assert app.screen in {widget for widget, _ in rendered["textual"][1]}
        assert app.screen not in {widget for widget, _ in rendered["rows"][1]}, rendered["rows"][1]

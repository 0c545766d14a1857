"""Snapshots of the chat screen at 80x24 in the dark and light themes (cursor blink off).

The reply comes from a ScriptedBackend so the picture is deterministic; the process memory in the
status bar is pinned for the same reason."""

from __future__ import annotations

import pytest

from engine import paths
from engine.chat.history import HistoryStore
from engine.config import settings_from_dict
from tests.apphelpers import wait_until
from tests.scripted_backend import ScriptedBackend
from tui.app import HearthApp
from tui.widgets.status_bar import StatusBar

REPLY = (
    "Here is a function that adds two numbers:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
    "- It takes **two** arguments\n- It returns their sum"
)


def make(theme: str) -> HearthApp:
    settings = settings_from_dict({"ui": {"theme": theme}})
    return HearthApp(settings, ScriptedBackend(REPLY), HistoryStore(paths.history_db_path()))


async def converse(pilot) -> None:
    prompt = pilot.app.screen.query_one("#prompt")
    prompt.load_text("How do I add two numbers in Python?")
    await pilot.press("enter")
    await wait_until(pilot, lambda: not pilot.app.screen.streaming)
    status = pilot.app.screen.query_one(StatusBar)
    status.memory_mib = 123.0
    status.refresh_text()
    await pilot.pause()


@pytest.mark.parametrize("theme", ["hearth-dark", "hearth-light"])
def test_chat_screen(snap_compare, theme: str) -> None:
    assert snap_compare(make(theme), terminal_size=(80, 24), run_before=converse)


def test_first_run_model_screen(snap_compare) -> None:
    """No model yet: the model screen on the pick for a 2 GiB machine (budget pinned)."""
    from engine.models.budget import MemoryBudget

    app = HearthApp(settings_from_dict({}), None, HistoryStore(paths.history_db_path()))
    app.budget_override = MemoryBudget(available=2 * 2**30, margin=200 * 2**20, source="MemAvailable")

    async def opened(pilot) -> None:
        from tui.screens.models import ModelsScreen

        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen) and pilot.app.screen.listed)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=opened)

"""The chat's event loop (tui/event_loop.py): uvloop's when installed, asyncio's otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from tui import event_loop


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_the_chat_runs_on_uvloop_when_it_is_installed() -> None:
    loop = event_loop.run(running_loop())
    assert isinstance(loop, uvloop.Loop)
    assert loop.is_closed()  # closed after the app, as asyncio.run does


def test_without_uvloop_the_chat_runs_on_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # (an import of it then raises ImportError)
    loop = event_loop.run(running_loop())
    assert isinstance(loop, asyncio.BaseEventLoop) and not isinstance(loop, uvloop.Loop)
    assert loop.is_closed()


def test_what_the_app_raises_reaches_the_caller() -> None:
    async def fails() -> None:
        raise ValueError("from the app")

    with pytest.raises(ValueError, match="from the app"):
        event_loop.run(fails())

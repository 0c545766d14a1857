"""Helpers for Pilot tests: build the real app on the real model, wait for replies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine import paths
from engine.chat.history import HistoryStore
from engine.chat.kv_state import KVStateStore
from engine.chat.llama import LlamaBackend
from engine.config import Settings, settings_from_dict
from tui.app import HearthApp


def make_settings(**sections) -> Settings:
    base = {"chat": {"temperature": 0.0, "max_tokens": 200}, "model": {"seed": 3}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return settings_from_dict(base)


def make_app(gguf: Path | None, settings: Settings | None = None) -> HearthApp:
    settings = settings or make_settings()
    states = KVStateStore(paths.kv_state_dir(), settings.model.state_cache_mib * 2**20)
    backend = LlamaBackend(gguf, n_ctx=2048, seed=settings.model.seed, state_store=states) if gguf else None
    return HearthApp(settings, backend, HistoryStore(paths.history_db_path()), "models")


async def wait_until(pilot, condition, timeout: float = 60.0, step: float = 0.02) -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the app"
        await pilot.pause(step)


async def ask(pilot, text: str) -> None:
    prompt = pilot.app.screen.query_one("#prompt")
    prompt.load_text(text)
    prompt.focus()
    await pilot.press("enter")


async def skip_first_run(pilot) -> None:
    """With no model, the app opens the model screen (the first-run offer); close it."""
    from tui.screens.models import ModelsScreen

    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen))
    await pilot.press("escape")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, ModelsScreen))

"""The model screen on the real app: a first run with no model offers the pick for this machine
and downloads it with progress from a hub on 127.0.0.1 (real GGUF bytes), then chats with it;
F2 lists local models with fit marks, switches and removes them."""

from __future__ import annotations

import shutil

import pytest

from bench.quants import quantized
from engine import paths
from engine.models.budget import MemoryBudget
from tests.apphelpers import ask, make_app, wait_until
from tests.hubserver import HubServer
from tui.screens.chat import ChatScreen
from tui.screens.models import ModelsScreen
from tui.widgets.conversation import ReplyView
from tui.widgets.status_bar import StatusBar

pytestmark = pytest.mark.model

SIZE = (100, 30)
MIB = 2**20
SMALL_MACHINE = MemoryBudget(available=400 * MIB, margin=128 * MIB, source="test")
"""Room for SmolLM2-135M at n_ctx 2048 and nothing bigger in the catalog."""


def screen_text(screen) -> str:
    return " ".join(str(w.render()) for w in screen.query("Static, Label"))


async def test_first_run_offers_the_pick_downloads_it_and_chats(gguf_path, monkeypatch) -> None:
    q4_0 = quantized(gguf_path, "Q4_0")
    served = {"bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_0.gguf": q4_0}
    with HubServer(served) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        app = make_app(None)
        app.budget_override = SMALL_MACHINE
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listed)
            models = app.screen
            offer = str(models.query_one("#pick").render())
            assert "No model yet" in offer and "SmolLM2-135M-Instruct" in offer and "fits" in offer
            seen: list[str] = []  # each progress line as drawn
            draw = ModelsScreen.on_pull_progress

            def spy(screen, message) -> None:
                draw(screen, message)
                seen.append(str(screen.query_one("#progress-text").render()))

            monkeypatch.setattr(ModelsScreen, "on_pull_progress", spy)
            await pilot.press("p")
            await wait_until(pilot, lambda: not isinstance(app.screen, ModelsScreen))
            assert any("MiB/s" in text and "left" in text for text in seen), seen
            # the notice is a message to the app: handled on its next turn
            await wait_until(pilot, lambda: any("It runs with n_ctx 2048" in n.message for n in app._notifications))
            pulled = paths.models_dir() / "SmolLM2-135M-Instruct-Q4_0.gguf"
            assert pulled.stat().st_size == q4_0.stat().st_size
            chat = app.screen
            assert isinstance(chat, ChatScreen)
            await wait_until(pilot, lambda: app.session.backend is not None and app.session.backend.loaded)
            assert "Q4_0" in str(chat.query_one(StatusBar).render())
            await ask(pilot, "What is the capital of France? Answer in one word.")
            await wait_until(pilot, lambda: chat.query(ReplyView) and not chat.streaming)
            assert "Paris" in chat.query_one(ReplyView).text


async def test_escape_stops_a_download_and_keeps_the_partial_file(gguf_path, monkeypatch) -> None:
    q8_0 = quantized(gguf_path, "Q8_0")
    served = {"bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf": q8_0}
    with HubServer(served) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        app = make_app(None)
        app.budget_override = MemoryBudget(available=8 * 1024 * MIB, margin=800 * MIB, source="test")
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listed)
            models = app.screen
            index = next(i for i in range(models.query_one("#models").option_count)
                         if models.query_one("#models").get_option_at_index(i).id == "catalog:SmolLM2-135M-Instruct")
            models.query_one("#models").highlighted = index
            hub.hold_after = 8 * MIB  # the link stalls part-way: Esc must still stop at once
            await pilot.press("p")
            partial = paths.models_dir() / "SmolLM2-135M-Instruct-Q8_0.gguf.partial"
            await wait_until(pilot, lambda: partial.exists() and partial.stat().st_size > 0)
            await pilot.press("escape")
            await wait_until(pilot, lambda: not models.pulling, timeout=5)
            assert isinstance(app.screen, ModelsScreen)  # still open: the user may retry
            assert any("stopped" in n.message for n in app._notifications)
            assert partial.exists() and not partial.with_suffix("").exists()


async def test_f2_lists_fits_switches_and_removes(gguf_path) -> None:
    own = paths.models_dir() / "SmolLM2-135M-Instruct-Q2_K.gguf"
    shutil.copyfile(quantized(gguf_path, "Q2_K"), own)
    app = make_app(gguf_path)
    app.budget_override = MemoryBudget(available=600 * MIB, margin=128 * MIB, source="test")
    async with app.run_test(size=SIZE) as pilot:
        chat = app.screen
        await wait_until(pilot, lambda: app.session.backend.loaded)
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listed)
        models = app.screen
        options = models.query_one("#models")
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        mine = next(label for label in labels if own.name in label)
        assert mine.startswith("✓") and "needs" in mine
        assert any(label.startswith("✗ Qwen3-4B") for label in labels)  # too large for 600 MiB
        await pilot.press("enter")  # the highlighted local model: ours
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await wait_until(pilot, lambda: app.session.backend.model_path == own and app.session.backend.loaded)
        assert "Q2_K" in str(chat.query_one(StatusBar).render())
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listed)
        await pilot.press("d")
        await wait_until(pilot, lambda: not own.exists())
        assert any(f"Removed {own.name}" in n.message for n in app._notifications)


async def test_f2_shows_predicted_speed_once_the_machine_is_measured(gguf_path) -> None:
    """With this machine's speed kept (as hearth models bench leaves it), catalog rows show
    predicted tokens/s and the pick says how fast it will be; a machine too slow for the bigger
    models gets a smaller one."""
    from engine.models import speed

    speed.save(speed.MachineSpeed(bandwidth=2e9, fixed_s=0.02, threads=2), paths.machine_speed_path())
    app = make_app(gguf_path)
    app.budget_override = MemoryBudget(available=16 * 1024 * MIB, margin=1024 * MIB, source="test")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listed)
        from textual.widgets import OptionList

        rows = [str(option.prompt) for option in app.screen.query_one(OptionList).options]
        assert sum("tok/s" in row for row in rows) >= 10, rows
        pick = str(app.screen.query_one("#pick").render())
        assert "predicted" in pick and "tokens/s here" in pick and "Qwen3-4B" in pick  # too slow for it
        recommended = next(row for row in rows if "recommended" in row)
        assert "Qwen3-4B" not in recommended

"""The Textual app: owns the launch settings, the backend, the history store and the session.

Screens and widgets live in their own modules; this file wires them together and offers the
actions in the command palette.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.driver import Driver
from textual.markup import escape as escape_markup
from textual.notifications import SeverityLevel
from textual.screen import Screen

from engine import paths
from engine.chat.backend import ChatBackend
from engine.chat.factory import kv_state_store
from engine.chat.history import HistoryStore
from engine.chat.session import ChatSession
from engine.config import Settings
from engine.errors import HearthError
from engine.models.budget import MemoryBudget, memory_budget
from engine.sanitize import inert
from themes import BUILTIN_THEMES
from tui.engine_thread import EngineThread
from tui.screens.chat import ChatScreen
from voice.errors import VoiceError
from voice.speak import SentenceSplitter, Speaker

if TYPE_CHECKING:
    from voice.session import Voice

LOG = logging.getLogger("hearth.tui")

NO_MODEL_HINT = (
    "No model yet. F2 downloads one that fits this machine; or start hearth with --model "
    "PATH/TO/MODEL.gguf, set model.path in the config, or put a .gguf file in {models_dir}."
)


class HearthApp(App[int]):
    """hearth's chat UI.

    Args:
        settings: frozen launch settings (config file + flags).
        backend: the chat backend, or ``None`` when no model was found (the UI says so).
        store: the history store.
        models_dir: shown in the no-model hint.
    """

    CSS_PATH = "app.tcss"
    TITLE = "hearth"

    def __init__(
        self,
        settings: Settings,
        backend: ChatBackend | None,
        store: HistoryStore,
        models_dir: str = "",
    ) -> None:
        # NO_COLOR (no-color.org): Textual then strips every colour only with native ANSI colours
        # (otherwise it draws in greys), so ask for those.
        super().__init__(ansi_color=True if "NO_COLOR" in os.environ else None)
        self.settings = settings
        self.store = store
        self.session = ChatSession(backend, store, settings.chat.system_prompt, kv_states=kv_state_store(settings),
                                   preset=settings.preset)
        """The conversation, and the only owner of the backend (``session.backend``)."""
        self.engine_thread = EngineThread()
        """Where the backend loads, replies and saves state (tui.engine_thread says why)."""
        self._voice: Voice | None = None
        self._speaker: Speaker | None = None
        self.budget_override: MemoryBudget | None = None
        """Plan model fits for this budget instead of the machine's (tests)."""
        self.no_model_hint = NO_MODEL_HINT.format(models_dir=models_dir or "hearth's models directory")
        for theme in BUILTIN_THEMES:
            self.register_theme(theme)
        self.theme = settings.ui.theme

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this terminal; on Linux and macOS, one whose input thread does
        not wake ten times a second while nothing is typed (tui.input_driver)."""
        driver_class = super().get_driver_class()
        if driver_class.__module__ == "textual.drivers.linux_driver":  # (not imported on Windows)
            from tui.input_driver import QuietLinuxDriver

            if driver_class is QuietLinuxDriver.__base__:
                return QuietLinuxDriver
        return driver_class

    def _display(self, screen: Screen, renderable: Any) -> None:
        """Textual's frame to the terminal, after closing the typing lane (tui.typing_lane): the
        generation thread draws nothing while a frame is written, or after it until the chat
        screen opens the lane again where its reply is then."""
        lane = getattr(self._driver, "lane", None)
        if lane is not None:
            lane.close()
        super()._display(screen, renderable)

    def on_mount(self) -> None:
        # the terminal hung up (an SSH connection that dropped): exit as if asked, so the chat,
        # its KV state and hearth connect's socket are saved and removed as on a normal exit
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        self.push_screen(ChatScreen())

    def voice(self) -> Voice:
        """Push-to-talk for this app, created on first use."""
        if self._voice is None:
            from voice.session import Voice  # numpy: paid at the first push-to-talk, not at start

            self._voice = Voice(self.settings.voice, paths.models_dir())
        return self._voice

    def warm_up_voice(self) -> None:
        """Load the speech model in the background; a failure is reported when it is needed."""
        try:
            self.voice().transcriber()
        except Exception as error:  # noqa: BLE001 - listen() raises it again, with its message
            LOG.info("speech model not ready: %s", error)

    def reply_speaker(self) -> Callable[[str | None], None] | None:
        """With ``voice.speak``: a function the reply worker calls with each piece of reply text
        (``None`` at the end) to speak it sentence by sentence; else ``None``. No TTS program:
        one notification, and replies stay silent."""
        if not self.settings.voice.speak:
            return None
        if self._speaker is None:
            try:
                self._speaker = Speaker.for_settings(self.settings.voice)
            except VoiceError as error:
                self.call_from_thread(self.notify, error.message, title=error.title, severity="warning")
                return None
        speaker, splitter = self._speaker, SentenceSplitter()

        def speak(text: str | None) -> None:
            for sentence in (splitter.feed(text) if text is not None else splitter.flush()):
                speaker.say(sentence)

        return speak

    def stop_speaking(self) -> bool:
        """Stop a reply being spoken; True if one was."""
        if self._speaker is None or self._speaker.idle.is_set():
            return False
        self._speaker.stop()
        return True

    def memory_budget(self) -> MemoryBudget:
        """What this machine can give a model now (see :func:`engine.models.budget.memory_budget`)."""
        return self.budget_override or memory_budget()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ChatScreen):
            yield SystemCommand("New chat", "Start a new conversation", screen.action_new_chat)
            yield SystemCommand("Chats", "Open, rename or delete past chats", screen.action_show_chats)
            yield SystemCommand("Talk", "Push-to-talk: record a question (again to stop)",
                                screen.action_push_to_talk)
            yield SystemCommand("Models", "Models here and in the catalog: download, remove, switch",
                                screen.action_show_models)
            yield SystemCommand("Copy reply", "Copy the last reply (OSC 52)", screen.action_copy_reply)
            yield SystemCommand("Export chat as Markdown", "Write this chat to hearth-chat-ID.md",
                                lambda: screen.action_export_chat("md"))
            yield SystemCommand("Export chat as JSON", "Every message with role, text, time and status",
                                lambda: screen.action_export_chat("json"))
            yield SystemCommand("Stop reply", "Stop the reply that is streaming", screen.action_stop)
            for name, chat in self.settings.presets.items():
                # the palette parses help as markup: a prompt's "[" must stay text
                about = escape_markup(inert(" ".join(chat.system_prompt.split())[:60], one_line=True))
                yield SystemCommand(f"Preset: {name}" if name else "Preset: none ([chat])",
                                    f"temperature {chat.temperature:g}, max {chat.max_tokens} tokens · {about}",
                                    lambda name=name: screen.choose_preset(name))
            yield SystemCommand("Use the local model", "Chat with the GGUF model on this machine",
                                lambda: screen.switch_backend(None))
            for name, endpoint in self.settings.endpoints.items():
                yield SystemCommand(f"Use endpoint {name}", f"Chat with {endpoint.url}",
                                    lambda name=name: screen.switch_backend(name))

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification of hearth's: the text made inert and never parsed as markup, since
        messages carry file names, server replies and chat titles (``markup`` is ignored)."""
        super().notify(inert(message), title=inert(title, one_line=True), severity=severity,
                       timeout=timeout, markup=False)

    def notify_error(self, error: HearthError, severity: SeverityLevel = "error") -> None:
        """One notification for a domain error: its title and one-line message, kept 10 s."""
        self.notify(error.message, title=error.title, severity=severity, timeout=10)

    def log_exception(self, error: BaseException) -> None:
        """Write an unexpected error with its traceback to hearth's log file."""
        LOG.error("unexpected error", exc_info=error)

    def on_unmount(self) -> None:
        if self._speaker is not None:
            self._speaker.close()
        self.session.flush()  # a final save that failed (full disk) gets one more try
        backend = self.session.backend
        if backend is not None:
            try:
                self.session.save_state()  # the next start reopens this chat without reprocessing
            except Exception as error:  # noqa: BLE001 - never lose the exit over a cache file
                self.log_exception(error)
            backend.close()
        self.engine_thread.close()
        self.store.close()

"""The chat screen: the conversation, the prompt, the status bar, the footer."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding

from engine import paths
from engine.chat import session as session_events
from engine.chat.backend import ChatBackend, GenerationParams, TokenEvent
from engine.chat.export import export_chat
from engine.chat.factory import local_fallback, make_backend
from engine.chat.session import RetiredBackend
from engine.config import use_preset, with_overrides
from engine.errors import BackendError, ConfigError, ContextOverflowError, HearthError, ModelLoadError
from tui import messages as events
from tui.collector import hold_for_streaming, release_after_streaming
from tui.frame_pacer import FramePacer
from tui.screens.chats import ChatsScreen, Opened
from tui.token_times import TokenTimes
from tui.typing_lane import TypingLane
from tui.widgets.conversation import CodeBlock, Conversation, ReplyView, UserMessage, warm_up_markdown
from tui.widgets.key_footer import KeyFooter
from tui.widgets.prompt_input import PromptInput
from tui.widgets.recording_bar import RecordingBar
from tui.widgets.status_bar import LIVE_EVERY_S, StatusBar
from tui.widgets.terminal_scroll import TerminalScrollScreen

if TYPE_CHECKING:
    from engine.models.store import Pulled
    from tui.app import HearthApp
    from voice.listen import Level


class ChatScreen(TerminalScrollScreen):
    """One conversation at a time; replies stream from a thread worker in batches."""

    app: HearthApp  # this screen runs only in hearth's app: its typed `app`

    BINDINGS = [
        Binding("escape", "stop", "Stop", show=True),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+o", "show_chats", "Chats"),
        Binding("f2", "show_models", "Models"),
        Binding("ctrl+y", "copy_reply", "Copy", priority=True),  # over the prompt's redo
    ]

    SCROLLED_BY_TERMINAL = Conversation

    DEFAULT_CSS = """
    ChatScreen { layout: vertical; }
    #conversation { height: 1fr; padding: 0; scrollbar-size-vertical: 1; }
    #prompt { margin: 0 1; border-top: solid $primary 50%; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._reply: ReplyView | None = None
        self._voice_stop: threading.Event | None = None  # set while recording
        self._voice_cancel = threading.Event()
        self._microphone = ""
        """The microphone of the last recording, as the user was told."""
        keys = self.app.settings.voice.push_to_talk_key
        self._bindings.bind(keys, "push_to_talk", "Talk")
        ui = self.app.settings.ui
        self._pacer = FramePacer(ui.max_fps, ui.cpu_budget)
        self._lane: TypingLane | None = None
        """Where the generation thread draws the reply's plain text itself (the terminal's:
        tui.typing_lane); None when the driver has none (headless, Windows)."""
        self._token_times = TokenTimes.from_env()
        """Only under bench/smooth_stream.py: each token's time, written down (tui.token_times)."""
        self._storage_told: set[str] = set()
        self._trimmed = 0
        """Messages the context window has dropped, to tell when the reply ends (0: nothing)."""
        self._status = StatusBar(id="status")
        self._ui_loop: tuple[asyncio.AbstractEventLoop, contextvars.Context]
        """The UI thread's event loop and the screen's context (set when it is mounted)."""

    @property
    def streaming(self) -> bool:
        return self._reply is not None

    def compose(self) -> ComposeResult:
        yield Conversation(id="conversation")
        yield RecordingBar(self.app.settings.voice.push_to_talk_key.split(",")[0])
        yield PromptInput(id="prompt", cursor_blink=self.app.settings.ui.cursor_blink)
        yield self._status
        yield KeyFooter()

    def on_mount(self) -> None:
        self._ui_loop = (asyncio.get_running_loop(), contextvars.copy_context())
        self.query_one("#conversation").anchor()
        self.query_one(PromptInput).focus()
        self.call_after_refresh(warm_up_markdown)  # (after the first frame: the prompt is usable)
        if self.app.store.read_only:
            self.notify(f"{self.app.store.path} cannot be written: past chats can be read, new ones are "
                        "not saved.", title="History is read-only", severity="warning", timeout=10)
        backend = self.app.session.backend
        status = self.query_one(StatusBar)
        if backend is None:
            status.set_state("no model")
            self.action_show_models(first_run=True)  # offer the catalog pick for this machine
            return
        status.set_model(backend.describe(), "loading…")
        self.load_model(backend)

    # -- model loading ------------------------------------------------------------------------

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_model(self, backend: ChatBackend, retired: RetiredBackend | None = None) -> None:
        """Load ``backend``; first retire the one it replaces (save its KV state, free its
        model): both wait on the disk (an SD card on a Pi), so on the engine thread, not the UI
        thread, and the old model is gone before the new one's memory is checked and loaded. A
        failure to retire costs only speed: it is logged."""
        await self.app.engine_thread.run(self._load_model, backend, retired)

    def _load_model(self, backend: ChatBackend, retired: RetiredBackend | None) -> None:
        if retired is not None:
            try:
                retired.close()
            except Exception as error:  # noqa: BLE001 - an optimisation must not break the chat
                self.app.log_exception(error)
        try:
            info = backend.load()
        except HearthError as error:
            self.post_message(events.ModelLoadFailed(error))
        else:
            self.post_message(events.ModelLoaded(info))

    def on_model_loaded(self, message: events.ModelLoaded) -> None:
        self.query_one(StatusBar).set_model(message.info, "ready")
        backend = self.app.session.backend
        if backend is not None and backend.insecure_warning:
            self.notify(backend.insecure_warning, title="Insecure connection", severity="warning", timeout=10)
        if message.info.notice:
            self.notify(message.info.notice, title="About this model", severity="warning", timeout=10)

    def on_model_load_failed(self, message: events.ModelLoadFailed) -> None:
        self.query_one(StatusBar).set_state("model failed")
        self.app.notify_error(message.error)
        try:
            local = local_fallback(self.app.settings, self.app.session.backend)
        except HearthError as error:
            self.app.notify_error(error)
            return
        if local is not None:
            self.notify("Falling back to the local model.", title="Fallback")
            self._use_backend(local)

    def switch_backend(self, endpoint: str | None, model_path: Path | None = None, n_ctx: int | None = None) -> None:
        """Chat on with the named endpoint, or the local model (``None``; ``model_path``: that
        GGUF instead of the configured one, at ``n_ctx`` tokens if given); the chat stays open."""
        if self.streaming:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        settings = self.app.settings
        if model_path is not None:
            settings = with_overrides(settings, model__path=str(model_path), model__n_ctx=n_ctx)
        try:
            backend = make_backend(settings, endpoint)
        except HearthError as error:
            self.app.notify_error(error)
            return
        if backend is None:
            self.notify(self.app.no_model_hint, title="No model", severity="warning")
            return
        self._use_backend(backend)

    def _use_backend(self, backend: ChatBackend) -> None:
        """Hand ``backend`` to the session; a worker retires the old one, then loads the new one."""
        retired = self.app.session.switch_backend(backend)
        self.query_one(StatusBar).set_model(backend.describe(), "loading…")
        self.load_model(backend, retired)

    # -- sending and streaming ----------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def send_prompt(self, message: PromptInput.Submitted) -> None:
        prompt = message.text.strip()
        if not prompt:
            return
        backend = self.app.session.backend
        if backend is None:
            self.notify(self.app.no_model_hint, title="No model", severity="warning")
            return
        if self.streaming:
            self.notify("A reply is still streaming: Esc stops it.", severity="warning")
            return
        message.input.remember(prompt)
        message.input.load_text("")
        conversation = self.query_one(Conversation)
        reply = ReplyView()
        self._reply = reply  # streaming from here: no second send while the widgets mount
        self._cancel = threading.Event()
        await conversation.add(UserMessage(prompt), reply, streaming=True)
        await reply.start_stream()
        conversation.anchor()
        hold_for_streaming()
        self._lane = getattr(self.app._driver, "lane", None)
        self._pacer.start()
        if not backend.loaded:
            self.query_one(StatusBar).set_state("loading… (your message waits)")
        self.generate(prompt, self._cancel)

    @work(exclusive=True, group="reply", exit_on_error=False)
    async def generate(self, prompt: str, cancel: threading.Event) -> None:
        """Run the session on the engine thread; post text in batches, paced by
        :class:`FramePacer`."""
        await self.app.engine_thread.run(self._generate, prompt, cancel)

    def _generate(self, prompt: str, cancel: threading.Event) -> None:
        settings = self.app.settings
        params = GenerationParams(
            temperature=settings.chat.temperature, top_p=settings.chat.top_p,
            max_tokens=settings.chat.max_tokens,
        )
        pacer = self._pacer
        speak = self.app.reply_speaker()
        pending: list[str] = []
        last_post = last_token = last_handed = 0.0
        lane = self._lane
        laned = 0  # batches the lane drew since the last one handed to the UI
        batches = 0
        token_gap = 0.0  # seconds between tokens, a moving average (weight of the newest: 0.3)
        stats: TokenEvent | None = None
        times = self._token_times
        try:
            for event in self.app.session.send(prompt, params, cancel):
                if isinstance(event, TokenEvent):
                    stats = event
                    if event.text:
                        pending.append(event.text)
                        if speak is not None:
                            speak(event.text)
                    now = time.monotonic()
                    if last_token:
                        token_gap += 0.3 * (now - last_token - token_gap)
                    last_token = now
                    if times is not None and event.finish_reason is None:  # (a token, not the last event)
                        times.token(now)
                    if pending and pacer.due(now - last_post, token_gap):
                        text = "".join(pending)
                        pending.clear()
                        last_post = now
                        batches += 1
                        if lane is not None and lane.write(text):  # drawn here: the UI sleeps on
                            laned += 1
                            if now - last_handed < LIVE_EVERY_S:  # (the figures: no oftener)
                                continue
                            self._hand_to_ui("", stats, laned)  # the figures only
                        else:
                            self._hand_to_ui(text, stats, laned + 1)
                        laned, last_handed = 0, now
                elif isinstance(event, session_events.ContextTrimmed):
                    self.post_message(events.ContextTrimmed(event.dropped_messages))
                elif isinstance(event, session_events.ReplySaved):
                    if lane is not None:
                        lane.report(batches)
                    if speak is not None:
                        speak(None)  # the last sentence
                    self.post_message(events.ReplyFinished(event.text, event.status, stats,
                                                           storage_error=event.storage_error))
        except (ContextOverflowError, ModelLoadError) as error:  # nothing was sent or saved
            self.post_message(events.ReplyFinished("", "error", None, error, prompt=prompt))
        except Exception as error:  # noqa: BLE001 - a user sees one line, the log keeps the rest
            if not isinstance(error, HearthError):
                self.app.log_exception(error)
                error = BackendError(f"{type(error).__name__}: {error} (details in the log)")
            if pending:  # show what arrived before the failure; the reply keeps it
                self._hand_to_ui("".join(pending), None)
            self.post_message(events.ReplyFinished("", "error", stats, error))
        finally:
            if times is not None:  # (a line for every reply, whichever way it ended)
                times.report()

    def _hand_to_ui(self, text: str, stats: TokenEvent | None, batches: int = 1) -> None:
        """(On the generation thread.) Have :meth:`_chunk_arrived` called on the UI thread."""
        loop, context = self._ui_loop
        number = self._lane.hand_over() if text and self._lane is not None else 0
        try:
            loop.call_soon_threadsafe(self._chunk_arrived, text, stats, batches, number, context=context)
        except RuntimeError:  # the app has closed its loop (quitting mid-reply): nobody to show it to
            pass

    def before_frame(self) -> None:
        if self._reply is not None:
            self._reply.close_lane()

    def after_frame(self) -> None:
        if self._reply is not None:
            self._reply.reopen_lane()

    def _chunk_arrived(self, text: str, stats: TokenEvent | None, batches: int = 1, number: int = 0) -> None:
        """A batch of reply text (all tokens since the previous batch) and the reply's figures so
        far, on the UI thread. A plain callback on the event loop rather than a Textual message:
        dispatching a message (and the idle round that follows it) cost about 0.5 ms of the UI
        thread per batch, as much as drawing the batch (bench/smooth_stream.py). Callbacks and
        messages from the generation thread keep their order (both go through the loop's
        ``call_soon_threadsafe``), so the reply's end is handled after its last batch.

        ``text`` is "" when the generation thread drew the batches itself (tui.typing_lane) and
        hands over only the figures; ``batches`` counts those drawn since the last call, and this
        one, for the pacer; ``number`` is the lane's for the batch (TypingLane.hand_over; 0: none)."""
        if self._reply is not None and self._reply.is_attached:  # (not after quitting)
            if number and self._lane is not None:
                self._lane.drawn(number)  # (before the reply's drawing opens the lane again)
            self._reply.write(text)
            if stats is not None:
                self._status.set_live_stats(stats)
            self._pacer.frame_done(batches)

    def on_context_trimmed(self, message: events.ContextTrimmed) -> None:
        """Told when the reply ends (:meth:`on_reply_finished`): a notification mounted as the
        reply starts costs a layout just as its first tokens arrive, and at a Pi-class share of
        a core that held the first update back 200-250 ms (bench/smooth_stream.py, turn 51)."""
        self._trimmed = message.dropped_messages

    def _notify_trimmed(self) -> None:
        if self._trimmed:
            self.notify(
                f"The conversation outgrew the context window: from now on the model no longer sees "
                f"the oldest turns ({self._trimmed} messages so far); they stay in the history.",
                title="Context full",
            )
            self._trimmed = 0

    async def on_reply_finished(self, message: events.ReplyFinished) -> None:
        reply = self._reply
        if reply is None:
            return
        reply.close_lane()  # (a failed reply keeps what was shown)
        await self.query_one(Conversation).bring_back()
        if message.prompt:  # nothing was sent: give the prompt back
            await reply.remove()
            user = self.query(UserMessage).last()
            await user.remove()
            prompt_input = self.query_one(PromptInput)
            if not prompt_input.text:
                prompt_input.load_text(message.prompt)
        else:
            # a failed reply keeps what was shown (the history saved the same text)
            text = reply.text if message.status == "error" else message.text
            await reply.finish(text, message.status)
        self._reply = None
        release_after_streaming()
        await self.query_one(Conversation).trim()
        if message.stats is not None:
            self.query_one(StatusBar).set_reply_stats(message.stats)
        backend = self.app.session.backend
        self.query_one(StatusBar).set_state("ready" if backend is not None and backend.loaded else "model failed")
        self._notify_trimmed()
        if message.error is not None:
            self.app.notify_error(message.error)
        if message.storage_error is not None:
            self._notify_storage(message.storage_error)

    def on_unmount(self) -> None:
        release_after_streaming()
        self._cancel.set()  # quitting mid-reply: the worker stops within a token, then the app
        # closes the backend (which waits for it)

    def action_stop(self) -> None:
        """Esc: cancel a recording, else stop speaking, else stop the streaming reply within one
        token (the partial reply stays)."""
        if self._voice_stop is not None:
            self._voice_cancel.set()
            return
        if self.app.stop_speaking():
            return
        if self.streaming:
            self._cancel.set()

    # -- chats --------------------------------------------------------------------------------

    async def action_new_chat(self) -> None:
        if self.streaming:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        self.swap_kv_state(self.app.session.state_snapshot())
        self.app.session.new()
        await self.query_one(Conversation).clear()
        self.query_one(PromptInput).focus()

    def action_show_chats(self) -> None:
        if self.streaming:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        self.app.push_screen(ChatsScreen(self.app.store, self.app.session.chat_id), self._open_chat)

    async def _open_chat(self, opened: Opened | None) -> None:
        session = self.app.session
        if opened is None:
            if session.chat_id is None:  # the open chat was deleted (the session started anew)
                await self.query_one(Conversation).clear()
                self.query_one(PromptInput).focus()
            return
        chat_id, found = opened
        left = session.state_snapshot()
        try:
            stored = session.open(chat_id)
        except HearthError as error:  # a damaged database: this chat stays open
            self.app.notify_error(error)
            return
        self.swap_kv_state(left)
        self._reapply_preset()
        at = next((i for i, m in enumerate(stored) if m.id == found), None) if found else None
        await self.query_one(Conversation).show([(m.role, m.content, m.status) for m in stored], at=at)
        self.query_one(PromptInput).focus()

    @work(group="state", exit_on_error=False)
    async def swap_kv_state(self, left: tuple | None) -> None:
        """Save the KV cache of the chat just left and restore the one just opened (if saved
        earlier, even before a restart), so its next reply does not process the history again.
        A failure here costs only speed: it is logged, never shown as an error."""
        await self.app.engine_thread.run(self._swap_kv_state, left)

    def _swap_kv_state(self, left: tuple | None) -> None:
        backend = self.app.session.backend
        if backend is None:
            return
        try:
            if left is not None:
                backend.save_state(*left)
            self.app.session.restore_state()
        except Exception as error:  # noqa: BLE001 - an optimisation must not break the chat
            self.app.log_exception(error)

    # -- push-to-talk --------------------------------------------------------------------------

    def action_push_to_talk(self) -> None:
        """Start a recording; pressed again, stop it (a pause in speech stops it too). Stops any
        reply being spoken first."""
        self.app.stop_speaking()
        if self._voice_stop is not None:
            self._voice_stop.set()
            return
        self._voice_stop, self._voice_cancel = threading.Event(), threading.Event()
        self.query_one(RecordingBar).recording(0.0, -120.0)
        self.listen(self._voice_stop, self._voice_cancel)

    @work(thread=True, exclusive=True, group="voice", exit_on_error=False)
    def listen(self, stop: threading.Event, cancel: threading.Event) -> None:
        def level(sample: Level) -> None:
            self.post_message(events.VoiceLevel(sample.dbfs, sample.seconds))

        def stopped() -> None:
            self.post_message(events.VoiceRecorded())

        try:
            voice = self.app.voice()
            threading.Thread(target=self.app.warm_up_voice, daemon=True).start()  # model loads while you speak
            recorder = voice.recorder()
            if recorder.microphone() != self._microphone:  # the first recording, or another device
                self._microphone = recorder.microphone()
                self.app.call_from_thread(self.app.notify, f"Recording from {self._microphone}", title="Voice")
            heard = voice.listen(stop, cancel, level, on_stopped=stopped, recorder=recorder)
        except HearthError as error:
            self.post_message(events.VoiceHeard("", error))
        except Exception as error:  # noqa: BLE001 - a user sees one line, the log keeps the rest
            self.app.log_exception(error)
            self.post_message(events.VoiceHeard("", BackendError(f"voice input failed: {error} (details in the log)")))
        else:
            self.post_message(events.VoiceHeard(heard.text, cancelled=cancel.is_set()))

    def on_voice_level(self, message: events.VoiceLevel) -> None:
        if self._voice_stop is not None:
            self.query_one(RecordingBar).recording(message.seconds, message.dbfs)

    def on_voice_recorded(self, message: events.VoiceRecorded) -> None:
        if self._voice_stop is not None and not self._voice_cancel.is_set():
            self.query_one(RecordingBar).transcribing()

    async def on_voice_heard(self, message: events.VoiceHeard) -> None:
        self._voice_stop = None
        self.query_one(RecordingBar).hide()
        if message.error is not None:
            self.app.notify_error(message.error)
            return
        if message.cancelled:
            return
        if not message.text:
            self.notify("Didn't catch that — nothing but silence or noise was heard.", severity="warning")
            return
        prompt = self.query_one(PromptInput)
        text = f"{prompt.text.rstrip()} {message.text}".strip() if prompt.text.strip() else message.text
        prompt.load_text(text)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()
        if self.app.settings.voice.auto_send:
            await self.send_prompt(PromptInput.Submitted(prompt, text))

    # -- models -------------------------------------------------------------------------------

    def action_show_models(self, first_run: bool = False) -> None:
        """F2: models on this machine and the catalog, with fit marks; download, remove, switch."""
        if self.streaming:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        # the model screen brings the download stack (httpx, huggingface_hub): loaded on F2
        from tui.screens.models import ModelsScreen

        screen = ModelsScreen(self.app.memory_budget(), self.app.settings.model.n_ctx, first_run=first_run)
        self.app.push_screen(screen, self._use_model)

    def _use_model(self, chosen: Pulled | None) -> None:
        """After the model screen: chat with the chosen or downloaded model."""
        backend = self.app.session.backend
        if chosen is None:
            if backend is None:
                self.notify(self.app.no_model_hint, title="No model", severity="warning", timeout=10)
            return
        current = backend.model_path if backend is not None else None
        if current is not None and current.resolve() == chosen.path.resolve():
            return
        self.switch_backend(None, model_path=chosen.path, n_ctx=chosen.n_ctx)

    # -- clipboard ----------------------------------------------------------------------------

    def action_copy_reply(self) -> None:
        """Copy the focused reply, else the last one (OSC 52: works over SSH)."""
        focused = self.focused
        target = next(
            (w for w in focused.ancestors_with_self if isinstance(w, ReplyView)), None
        ) if focused is not None else None
        replies = self.query(ReplyView)
        reply = target or (replies.last() if replies else None)
        if reply is not None:
            reply.close_lane()  # (streaming: with what the generation thread drew)
        if reply is None or not reply.text:
            self.notify("No reply to copy yet.")
            return
        self._copy(reply.text, "reply")

    def choose_preset(self, name: str) -> None:
        """Chat on with preset ``name`` ('' for the config's [chat]); the open chat remembers it."""
        try:
            self.app.settings = use_preset(self.app.settings, name)
        except ConfigError as error:
            self.app.notify_error(error)
            return
        self.app.session.use_preset(name, self.app.settings.chat.system_prompt)
        self.notify(f"Preset: {name or 'none ([chat])'}")

    def _reapply_preset(self) -> None:
        """After opening a stored chat: chat on with the preset it was had with."""
        wanted = self.app.session.preset
        if wanted == self.app.settings.preset:
            return
        if wanted and wanted not in self.app.settings.presets:
            self.notify(f"This chat used preset {wanted!r}, which the config no longer has; "
                        f"going on with {self.app.settings.preset or '[chat]'}.", severity="warning")
            self.app.session.use_preset(self.app.settings.preset, self.app.settings.chat.system_prompt)
            return
        self.choose_preset(wanted)

    def action_export_chat(self, fmt: str) -> None:
        """Write the open chat as ``fmt`` ("md" or "json") to ``hearth-chat-ID.EXT`` in the
        directory hearth was started from (else the data directory), and say where."""
        chat_id = self.app.session.chat_id
        if chat_id is None:
            self.notify("Nothing to export yet: this chat has no saved messages.")
            return
        try:
            text = export_chat(self.app.store, chat_id, fmt)
        except HearthError as error:
            self.app.notify_error(error)
            return
        name = f"hearth-chat-{chat_id}.{fmt}"
        for folder in (Path.cwd(), paths.data_dir()):
            try:
                (folder / name).write_text(text, encoding="utf-8")
            except OSError:
                continue
            self.notify(f"Chat exported to {folder / name}")
            return
        self.notify(f"Could not write {name} here or in {paths.data_dir()}", severity="error")

    @on(CodeBlock.CopyRequested)
    def copy_code(self, message: CodeBlock.CopyRequested) -> None:
        self._copy(message.text, message.what)

    def _copy(self, text: str, what: str) -> None:
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the {what} ({len(text)} characters) to the clipboard.")

    def _notify_storage(self, error: HearthError) -> None:
        """A history failure, told once per distinct message: the chat goes on unsaved."""
        if error.message not in self._storage_told:
            self._storage_told.add(error.message)
            self.notify(f"{error.message}. The chat goes on; what cannot be stored is kept on screen.",
                        title="History not saved", severity="warning", timeout=10)

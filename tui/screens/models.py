"""The model screen: models on this machine and the catalog, each marked by whether it fits;
download with progress, remove, switch. Also what a first run with no model shows."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from engine import paths
from engine.errors import FetchCancelled, HearthError
from engine.models import speed as machine_speed
from engine.models.budget import MemoryBudget
from engine.models.catalog import load_catalog
from engine.models.discover import LocalModel, discover_models
from engine.models.estimate import mib
from engine.models.fetch import Progress, download
from engine.models.fit import file_estimator
from engine.models.picker import Plan, plan_family, recommend
from engine.models.store import Pulled, pull, remove_model
from engine.sanitize import inert

if TYPE_CHECKING:
    from tui.app import HearthApp


@dataclass
class PullProgress(Message):
    progress: Progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PullProgress)  # only the newest matters


@dataclass
class ModelsListed(Message):
    """The scan finished: local models (with their fit mark and detail), the catalog's plans,
    and the pick for this machine."""

    local: list[tuple[LocalModel, str, str]]
    plans: list[Plan]
    best: Plan | None


@dataclass
class PullFinished(Message):
    pulled: Pulled | None
    error: HearthError | None = None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class ModelsScreen(ModalScreen["Pulled | None"]):
    """Dismisses with the GGUF to chat with and its context size (a local one chosen, or one
    just downloaded), or None.

    Args:
        budget: the memory budget to mark fits against.
        n_ctx: the context size to plan for.
        first_run: no model yet: say so and point at the recommendation.
    """

    app: HearthApp  # this screen runs only in hearth's app: its typed `app`

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("p", "pull", "Download"),
        Binding("d,delete", "remove", "Remove"),
    ]
    DEFAULT_CSS = """
    ModelsScreen { align: center middle; }
    ModelsScreen > Vertical { width: 95%; height: 90%; background: $panel; padding: 0 1; }
    ModelsScreen #pick { margin: 1 0; color: $text; }
    ModelsScreen OptionList { height: 1fr; }
    ModelsScreen .pulling { display: none; }
    ModelsScreen.-pulling .pulling { display: block; }
    """

    def __init__(self, budget: MemoryBudget, n_ctx: int, first_run: bool = False) -> None:
        super().__init__()
        self.budget = budget
        self.n_ctx = n_ctx
        self.first_run = first_run
        self._local: dict[str, Path] = {}
        self._sources: dict[str, str] = {}
        self._specs: dict[str, str] = {}
        self._recommended: str | None = None
        self.listed = False
        """The scan has finished and the list shows its result."""
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Models · n_ctx {self.n_ctx} · {mib(self.budget.usable)} usable "
                        f"({self.budget.source} {mib(self.budget.available)} − {mib(self.budget.margin)} margin)")
            yield Static("", id="pick", markup=False)
            yield OptionList(id="models")
            yield ProgressBar(id="progress", classes="pulling", show_eta=False)
            yield Label("", id="progress-text", classes="pulling")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    @property
    def pulling(self) -> bool:
        return self.has_class("-pulling")

    def reload(self) -> None:
        """List the models again, in a worker: discovery reads every GGUF header it finds (the
        Hugging Face cache, Ollama, LM Studio), which on a Pi's SD card takes long enough to
        freeze the screen."""
        self.listed = False
        self.query_one(OptionList).loading = True
        self.scan()

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan(self) -> None:
        local = []
        for model in discover_models(paths.models_dir()):
            try:
                needed = file_estimator(model.path)(self.n_ctx).needed
                mark = "✓" if needed <= self.budget.usable else "✗"
                detail = f"needs {mib(needed)}"
            except HearthError as error:
                mark, detail = "!", error.message
            local.append((model, mark, f"{mib(model.size)}  {detail}"))
        speed = machine_speed.load(paths.machine_speed_path())  # measured by the CLI (models bench)
        plans = [plan_family(model, self.n_ctx, self.budget, catalog=()) for model in load_catalog()]
        best = recommend(self.n_ctx, self.budget, speed=speed,
                         min_tokens_per_s=self.app.settings.models.min_tokens_per_s)
        for plan in plans:
            plan.predict(speed)
        self.post_message(ModelsListed(local, plans, best))

    def on_models_listed(self, message: ModelsListed) -> None:
        options = self.query_one(OptionList)
        options.loading = False
        options.clear_options()
        self._local.clear()
        self._specs.clear()
        items: list[Option | None] = [Option("On this machine · Enter chats with it, d removes it", disabled=True)]
        for model, mark, detail in message.local:
            key = f"local:{model.path}"
            self._local[key] = model.path
            self._sources[key] = model.source
            where = "" if model.source == "hearth" else f"  [{model.source}]"
            row = inert(f"{mark} {model.name}  {detail}{where}", one_line=True)  # file names are untrusted
            items.append(Option(Content(row), id=key))
        if len(items) == 1:
            items.append(Option("  (none yet)", disabled=True))
        items.append(None)
        items.append(Option("Catalog · Enter or p downloads the pick for this machine", disabled=True))
        best = message.best
        self._recommended = f"catalog:{best.model.family}" if best else None
        for plan in message.plans:
            family = plan.model.family
            key = f"catalog:{family}"
            if plan.pick is None:
                items.append(Option(Content(f"✗ {family}  too large for this machine"), id=key))
                continue
            self._specs[key] = family
            star = "  ← recommended" if key == self._recommended else ""
            ctx = "" if plan.n_ctx == self.n_ctx else f" at n_ctx {plan.n_ctx}"
            speed = "" if plan.tokens_per_s is None else f", ~{plan.tokens_per_s:.1f} tok/s"
            row = (f"✓ {family}  {plan.pick.quant}{ctx}  ~{mib(plan.pick.size)} download, "
                   f"needs {mib(plan.pick.estimate.needed)}{speed}{star}")
            items.append(Option(Content(row), id=key))  # plain text, like every row here
        options.add_options(items)
        self._show_pick(best)
        target = self._recommended if self.first_run and self._recommended else None
        if target is None and self._local:
            target = next(iter(self._local))
        if target is not None:
            options.highlighted = options.get_option_index(target)
        options.focus()
        self.listed = True

    def _show_pick(self, best: Plan | None) -> None:
        intro = "No model yet. " if self.first_run else ""
        if best is None or best.pick is None:
            text = (f"{intro}No catalog model fits the {mib(self.budget.usable)} this machine can give; "
                    "hearth models import PATH adds a GGUF you already have.")
        else:
            text = (f"{intro}For this machine: {best.model.family} {best.pick.quant} "
                    f"(~{mib(best.pick.size)} download). {best.reason}. "
                    "Press p to download it (Esc stops; it resumes next time)."
                    + ("" if best.tokens_per_s is not None else
                       " (Speeds not measured yet: hearth models bench.)"))
        self.query_one("#pick", Static).update(text)

    def _highlighted_key(self) -> str | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    @on(OptionList.OptionSelected)
    def choose(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id or ""
        if key in self._local:
            self.dismiss(Pulled(self._local[key], self.n_ctx))
        elif key in self._specs:
            self.start_pull(self._specs[key])

    def action_pull(self) -> None:
        key = self._highlighted_key()
        spec = self._specs.get(key or "") or self._specs.get(self._recommended or "")
        if spec is None:
            self.notify("Nothing in the catalog fits this machine.", severity="warning")
            return
        self.start_pull(spec)

    def start_pull(self, spec: str) -> None:
        if self.pulling:
            self.notify("A download is already running (Esc stops it).", severity="warning")
            return
        self._cancel = threading.Event()
        self.add_class("-pulling")
        self.query_one("#progress-text", Label).update(f"Downloading {spec}…")
        self.run_pull(spec, self._cancel)

    @work(thread=True, exclusive=True, group="pull", exit_on_error=False)
    def run_pull(self, spec: str, cancel: threading.Event) -> None:
        def report(progress: Progress) -> None:
            self.post_message(PullProgress(progress))

        try:
            pulled = pull(spec, self.n_ctx, self.budget,
                          download=lambda remote, dest: download(remote, dest, report, cancel))
        except HearthError as error:
            self.post_message(PullFinished(None, error))
        else:
            self.post_message(PullFinished(pulled))

    def on_pull_progress(self, message: PullProgress) -> None:
        p = message.progress
        bar = self.query_one(ProgressBar)
        bar.update(total=p.total, progress=p.done)
        total = mib(p.total) if p.total else "?"
        self.query_one("#progress-text", Label).update(
            f"{mib(p.done)} of {total} · {p.rate / 2**20:.1f} MiB/s · {_duration(p.eta_s)} left"
            + (f" · resumed at {mib(p.resumed_from)}" if p.resumed_from else ""))

    def on_pull_finished(self, message: PullFinished) -> None:
        self.remove_class("-pulling")
        if message.error is not None:
            self.app.notify_error(message.error, "warning" if isinstance(message.error, FetchCancelled) else "error")
            return
        pulled = message.pulled
        assert pulled is not None  # no error: the download's result
        note = "" if pulled.n_ctx == self.n_ctx else f" It runs with n_ctx {pulled.n_ctx} to fit."
        self.notify(f"Downloaded {pulled.path.name}.{note}")
        self.dismiss(pulled)

    def action_remove(self) -> None:
        key = self._highlighted_key()
        if key not in self._local:
            return
        path = self._local[key]
        if self._sources.get(key) != "hearth":
            self.notify(f"{path.name} belongs to {self._sources.get(key)}; hearth does not delete it.",
                        severity="warning")
            return
        try:
            remove_model(path.name, paths.models_dir())
        except HearthError as error:
            self.app.notify_error(error)
            return
        self.notify(f"Removed {path.name}.")
        self.reload()

    def action_close(self) -> None:
        if self.pulling:
            self._cancel.set()  # the worker reports FetchCancelled; the partial file stays
            return
        self.dismiss(None)

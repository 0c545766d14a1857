"""``hearth``: the chat TUI; ``hearth ask``: one answer on stdout; ``hearth config``: the config.

Errors print one line on stderr and exit non-zero; no traceback reaches a user (the log file at
``engine.paths.log_file()`` keeps the details).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from engine import paths
from engine.config import Settings, load_settings, with_overrides
from engine.errors import ConfigError, HearthError, ModelLoadError
from engine.backends import make_backend
from engine.logs import configure_logging

LOG = logging.getLogger("hearth.cli")


def _common_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS  # so a subcommand does not overwrite a flag given before it
    parent.add_argument("--model", metavar="PATH", default=s, help="GGUF model file to run")
    parent.add_argument("--n-ctx", type=int, metavar="TOKENS", default=s, help="context window")
    parent.add_argument("--threads", type=int, metavar="N", default=s, help="generation threads")
    parent.add_argument("--temperature", type=float, default=s, help="sampling temperature (0: greedy)")
    parent.add_argument("--top-p", type=float, default=s, help="nucleus sampling threshold")
    parent.add_argument("--max-tokens", type=int, metavar="TOKENS", default=s, help="longest reply")
    parent.add_argument("--system", metavar="TEXT", default=s, help="system prompt")
    parent.add_argument("--seed", type=int, default=s, help="sampling seed")
    parent.add_argument("--endpoint", metavar="NAME", default=s,
                        help="chat with the server [endpoints.NAME] in the config instead")
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
    parser = argparse.ArgumentParser(
        prog="hearth", parents=[common],
        description="A private, offline chat assistant for small machines.",
    )
    parser.add_argument("--theme", default=argparse.SUPPRESS, help="hearth-dark, hearth-light, ...")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = commands.add_parser(
        "ask", parents=[common], help="answer one question on stdout (piped stdin is context)"
    )
    ask.add_argument("question", nargs="*", help="the question")
    ask.add_argument("--listen", action="store_true", help="ask aloud: record the question from the microphone")
    ask.add_argument("--speak", action="store_true", help="also speak the answer (voice.tts)")
    voice = commands.add_parser("voice", help="microphones and a speech-to-text test")
    voice.add_argument("action", choices=["devices", "test"],
                       help="devices: input devices and their rates; test: record (or --file) and transcribe")
    voice.add_argument("--file", metavar="WAV", help="test: transcribe this audio file instead of recording")
    voice.add_argument("--seconds", type=int, metavar="N", help="test: record at most N seconds")
    config = commands.add_parser("config", help="show, check or create the config file")
    config.add_argument("action", choices=["path", "check", "init"])
    models = commands.add_parser("models", parents=[common], help="list models, show what one needs")
    models.add_argument("action", choices=["list", "recommend", "pull", "import", "rm", "info"],
                        help="list: local models and whether each fits; recommend [FAMILY]: the pick "
                             "and why; pull FAMILY[:QUANT]; import PATH; rm NAME; info PATH: "
                             "metadata and memory estimate")
    models.add_argument("target", nargs="?", help="the family, file or name the action needs")
    models.add_argument("--ctx", type=int, metavar="TOKENS", help="context size to plan for (default: n_ctx)")
    models.add_argument("--ram", metavar="SIZE", help="plan for this much memory (4G, 512M) instead of what is free")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Config file, then flags on top.

    Raises:
        ConfigError: a bad file or flag value.
    """
    get = lambda name: getattr(args, name, None)  # noqa: E731
    return with_overrides(
        load_settings(),
        model__path=_model_arg(get("model")),
        model__n_ctx=get("n_ctx"),
        model__n_threads=get("threads"),
        model__seed=get("seed"),
        chat__temperature=get("temperature"),
        chat__top_p=get("top_p"),
        chat__max_tokens=get("max_tokens"),
        chat__system_prompt=get("system"),
        ui__theme=get("theme"),
    )


def _model_arg(value: str | None) -> str | None:
    """``--model``: an existing file becomes an absolute path; anything else stays a name (of a
    discovered model, or a catalog family to fetch)."""
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(paths.log_file())
    except OSError as exc:
        print(f"hearth: cannot open the log file: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "config":
            return run_config(args.action)
        settings = settings_from_args(args)
        if args.command == "voice":
            from tui.voice_cli import run_voice

            return run_voice(args, settings)
        endpoint = getattr(args, "endpoint", None)
        if args.command == "models":
            from tui.models_cli import run_models

            return run_models(args, settings, endpoint)
        if endpoint is None:
            from tui.models_cli import fetch_named_family

            settings = fetch_named_family(settings)
        if args.command == "ask":
            from tui.ask import run_ask

            question = " ".join(args.question)
            if args.listen:
                from tui.voice_cli import listen_for_question

                question = listen_for_question(settings)
            elif not question:
                raise ConfigError("hearth ask needs a question (or --listen to ask aloud)")
            backend = backend_with_fallback(settings, endpoint, warn=lambda text: print(f"hearth: {text}", file=sys.stderr))
            return run_ask(settings, question, backend, speak=args.speak)
        return run_tui(settings, endpoint)
    except HearthError as error:
        print(f"hearth: {error.one_line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def backend_with_fallback(settings: Settings, endpoint: str | None, warn) -> object:
    """``make_backend``, and for an endpoint with ``fallback = "local"`` that cannot be reached,
    the local model instead (``warn`` is told why).

    Raises:
        HearthError: as ``make_backend``, or the endpoint's load error when there is no fallback.
    """
    backend = make_backend(settings, endpoint)
    if getattr(backend, "insecure_warning", ""):
        warn(backend.insecure_warning)
    if endpoint and settings.endpoints[endpoint].fallback == "local":
        try:
            backend.load()
        except ModelLoadError as error:
            local = make_backend(settings)
            if local is None:
                raise
            warn(f"{error.message}; using the local model instead")
            return local
    return backend


def run_tui(settings: Settings, endpoint: str | None = None) -> int:
    from textual.theme import BUILTIN_THEMES as TEXTUAL_THEMES

    from engine.history import HistoryStore
    from themes import BUILTIN_THEMES
    from tui.app import HearthApp

    names = sorted({t.name for t in BUILTIN_THEMES} | set(TEXTUAL_THEMES))
    if settings.ui.theme not in names:
        raise ConfigError(f"unknown theme {settings.ui.theme!r}; choose one of: {', '.join(names)}")
    backend = make_backend(settings, endpoint)
    if endpoint is None and backend is not None and settings.model.path:
        from engine.gguf_info import check_gguf_file

        check_gguf_file(backend.model_path)  # a missing or non-GGUF file: one line, no TUI
    app = HearthApp(settings, backend, HistoryStore(paths.history_db_path()), str(paths.models_dir()))
    app.run()
    return int(app.return_code or 0)


def run_config(action: str) -> int:
    path = paths.config_path()
    if action == "path":
        print(path)
    elif action == "check":
        load_settings()
        print(f"{path}: ok" if path.exists() else f"{path}: not present, using defaults")
    else:
        from engine.config import default_toml

        if path.exists():
            raise ConfigError(f"{path} already exists; not overwriting it")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "x", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
            handle.write(default_toml())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``hearth``: the chat TUI; ``hearth ask``: one answer on stdout; ``hearth config``: the config.

Errors print one line on stderr and exit non-zero; no traceback reaches a user (the log file at
``engine.paths.log_file()`` keeps the details).
"""

from __future__ import annotations

import argparse
import atexit
import io
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from engine import paths
from engine.chat.factory import backend_with_fallback, make_backend
from engine.chat.history import HistoryStore
from engine.config import Settings, load_settings, use_preset, with_overrides
from engine.errors import ConfigError, HearthError
from engine.logs import configure_logging
from engine.models.gguf import check_gguf_file
from tui.commands.ask import run_ask
from tui.commands.config import run_config
from tui.commands.models import fetch_named_family, run_models
from tui.commands.output import warn
from tui.commands.voice import listen_for_question, run_voice

LOG = logging.getLogger("hearth.cli")


def _common_flags() -> Parser:
    parent = Parser(add_help=False)
    s = argparse.SUPPRESS  # so a subcommand does not overwrite a flag given before it
    parent.add_argument("--model", metavar="PATH", default=s, help="GGUF model file to run")
    parent.add_argument("--n-ctx", type=int, metavar="TOKENS", default=s, help="context window")
    parent.add_argument("--threads", type=int, metavar="N", default=s, help="generation threads")
    parent.add_argument("--temperature", type=float, default=s, help="sampling temperature (0: greedy)")
    parent.add_argument("--top-p", type=float, default=s, help="nucleus sampling threshold")
    parent.add_argument("--max-tokens", type=int, metavar="TOKENS", default=s, help="longest reply")
    parent.add_argument("--system", metavar="TEXT", default=s, help="system prompt")
    parent.add_argument("--preset", metavar="NAME", default=s,
                        help="chat with [presets.NAME] from the config (system prompt and sampling)")
    parent.add_argument("--seed", type=int, default=s, help="sampling seed")
    parent.add_argument("--endpoint", metavar="NAME", default=s,
                        help="chat with the server [endpoints.NAME] in the config instead")
    return parent


def build_parser() -> Parser:
    common = _common_flags()
    parser = Parser(
        prog="hearth", parents=[common],
        description="A private, offline chat assistant for small machines.",
    )
    parser.add_argument("--theme", default=argparse.SUPPRESS, help="hearth-dark, hearth-light, ...")
    parser.add_argument("--audio-socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="use the microphone and speaker behind this Unix socket (hearth connect sets it)")
    parser.add_argument("--version", action=_Version, help="hearth's version, llama-cpp-python's and Python's")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = commands.add_parser(
        "ask", parents=[common], help="answer one question on stdout (piped stdin is context)"
    )
    ask.add_argument("question", nargs="*", help="the question")
    ask.add_argument("--listen", action="store_true", help="ask aloud: record the question from the microphone")
    ask.add_argument("--speak", action="store_true", help="also speak the answer (voice.tts)")
    ask.add_argument("--shell", action="store_true",
                     help="answer with one command for this shell; it runs only when you press r")
    ask.add_argument("-f", "--file", dest="files", action="append", metavar="FILE", default=[],
                     help="a text file to read as context, with its name (repeatable)")
    voice = commands.add_parser("voice", help="microphones and a speech-to-text test")
    voice.add_argument("action", choices=["devices", "test"],
                       help="devices: input devices and their rates; test: record (or --file) and transcribe")
    voice.add_argument("--file", metavar="WAV", help="test: transcribe this audio file instead of recording")
    voice.add_argument("--seconds", type=count(1, 600), metavar="N", help="test: record at most N seconds")
    connect = commands.add_parser(
        "connect", help="chat with hearth on another machine over SSH, with this machine's microphone and speaker",
        description="Open the chat on another machine (a Pi) through your OpenSSH (~/.ssh/config, keys and "
                    "agent as usual); push-to-talk records from this machine's microphone and spoken replies "
                    "play here. The audio goes through a Unix socket that ssh forwards: no network port.")
    connect.add_argument("--ssh", metavar="COMMAND", help="the ssh command with its options (default: $HEARTH_SSH or ssh)")
    connect.add_argument("--remote-hearth", metavar="PATH", default="hearth",
                         help="hearth on the other machine (default: hearth on its login PATH)")
    connect.add_argument("host", help="[user@]host as ssh takes it (a Host alias of ~/.ssh/config works)")
    connect.add_argument("rest", nargs=argparse.REMAINDER, metavar="...",
                         help="what hearth runs there: its options for the chat (a model, a preset, ...) or a "
                              "command such as `voice devices`")
    doctor = commands.add_parser("doctor", help="check everything hearth needs, one line each with a fix",
                                 description="Check everything hearth needs, one line each with a fix.")
    doctor.add_argument("--model", metavar="PATH", default=argparse.SUPPRESS, help="check this GGUF instead")
    doctor.add_argument("--n-ctx", type=int, metavar="TOKENS", default=argparse.SUPPRESS,
                        help="check the fit at this context window")
    history = commands.add_parser("history", help="list, show, search and export past chats",
                                  description="Past chats: list, show, search and export them.")
    past = history.add_subparsers(dest="action", metavar="ACTION", required=True)
    past.add_parser("list", help="every chat: id, last update, messages, title",
                    description="Every chat: id, last update, number of messages, title.")
    show = past.add_parser("show", help="a chat's messages", description="Print a chat's messages.")
    show.add_argument("id", type=count(1), help="the chat's id (`hearth history list`)")
    search = past.add_parser("search", help="messages containing words, across every chat",
                             description="Messages containing every word (any case), across every chat.")
    search.add_argument("words", nargs="+", help="words to find (the last may be the start of one)")
    export = past.add_parser("export", help="a chat as Markdown or JSON",
                             description="Write a chat as Markdown or JSON (every message with role, text, time, status).")
    export.add_argument("id", type=count(1), help="the chat's id (`hearth history list`)")
    export.add_argument("--format", choices=["md", "json"], default="md", help="md (default) or json")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    completion = commands.add_parser(
        "completion", help="shell completion: print the script for bash, zsh or fish",
        description="Print hearth's completion script (argcomplete). bash/zsh: "
                    "eval \"$(hearth completion bash)\" in ~/.bashrc or ~/.zshrc; "
                    "fish: hearth completion fish > ~/.config/fish/completions/hearth.fish")
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    config = commands.add_parser("config", help="show, check or create the config file")
    config.add_argument("action", choices=["path", "check", "init"])
    models = commands.add_parser("models", help="list, recommend, fetch and inspect models")
    planning = Parser(add_help=False)
    planning.add_argument("--ctx", type=count(64), metavar="TOKENS",
                          help="context size to plan for (default: model.n_ctx)")
    planning.add_argument("--ram", metavar="SIZE", help="plan for this much memory (4G, 512M) instead of what is free")
    planning.add_argument("--json", action="store_true", help="machine-readable output")
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, target, text in (
        ("list", None, "models on this machine (or --endpoint's server) and whether each fits"),
        ("recommend", "FAMILY", "the pick for this machine, of FAMILY or across the catalog, and why"),
        ("pull", "FAMILY[:QUANT]", "download the pick (or that quantization) from the catalog"),
        ("import", "PATH", "copy a GGUF you already have into hearth's models directory"),
        ("rm", "NAME", "delete one of hearth's own models"),
        ("info", "PATH", "a GGUF's metadata and its memory estimate, part by part"),
        ("bench", None, "measure this machine's speed again (predicted tokens/s use it)"),
    ):
        action = actions.add_parser(name, parents=[planning], help=text, description=text)
        if target is not None:
            action.add_argument("target", nargs="?", metavar=target)
        if name == "list":
            action.add_argument("--endpoint", metavar="NAME", help="list the models of [endpoints.NAME]")
    return parser


class _Version(argparse.Action):
    """``--version``: looked up only when asked for (reading package metadata costs ~20 ms, on
    every start otherwise)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        print(version_line())
        parser.exit()


def version_line() -> str:
    """``hearth X (llama-cpp-python Y, Python Z)``, from the installed metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"hearth {of('hearth')} (llama-cpp-python {of('llama_cpp_python')}, Python {sys.version.split()[0]})"


def count(least: int, most: int = 1 << 20) -> Callable[[str], int]:
    """An argparse type: a whole number from ``least`` to ``most``, else one clear error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"{value} is outside {least}..{most}")
        return value
    return parse


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``hearth: argument --ctx: -100 is outside 64..1048576``."""

    def error(self, message: str) -> NoReturn:
        if "expected one argument" in message:
            message += " (a value starting with '-' is written --flag=VALUE)"
        warn(f"{message} (see {self.prog} --help)")
        raise SystemExit(2)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Config file, then flags on top.

    Raises:
        ConfigError: a bad file or flag value.
    """
    get = lambda name: getattr(args, name, None)  # noqa: E731
    settings = load_settings()
    if get("preset") is not None:
        settings = use_preset(settings, str(get("preset")))
    return with_overrides(
        settings,
        model__path=_model_arg(get("model")),
        model__n_ctx=get("n_ctx"),
        model__n_threads=get("threads"),
        model__seed=get("seed"),
        chat__temperature=get("temperature"),
        chat__top_p=get("top_p"),
        chat__max_tokens=get("max_tokens"),
        chat__system_prompt=get("system"),
        ui__theme=get("theme"),
        voice__audio_socket=get("audio_socket"),
    )


def _model_arg(value: str | None) -> str | None:
    """``--model``: an existing file becomes an absolute path; anything else stays a name (of a
    discovered model, or a catalog family to fetch)."""
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def main(argv: list[str] | None = None) -> int:
    # Text the terminal's encoding cannot show (a Latin-1 locale, a model's emoji) is replaced,
    # never a UnicodeEncodeError; bytes that are not UTF-8 in arguments become U+FFFD.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    argv = [_unbroken(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions (argcomplete's protocol)
        import argcomplete

        argcomplete.autocomplete(parser)  # answers and exits
    args = parser.parse_args(argv)
    if args.command == "completion":
        import argcomplete

        sys.stdout.write(argcomplete.shellcode(["hearth"], shell=args.shell))
        return 0
    try:
        configure_logging(paths.log_file())
    except OSError as exc:
        warn(f"cannot open the log file: {exc}")
        return 1
    try:
        if args.command == "config":
            return run_config(args.action)
        if args.command == "history":
            from tui.commands.history import run_history

            return run_history(args)
        if args.command == "doctor":
            from tui.commands.doctor import run_doctor

            return run_doctor(args)
        settings = settings_from_args(args)
        if args.command == "connect":
            from tui.commands.connect import run_connect

            return run_connect(args, settings)
        if args.command == "voice":
            return run_voice(args, settings)
        endpoint = getattr(args, "endpoint", None)
        if args.command == "models":
            return run_models(args, settings, endpoint)
        if endpoint is None:
            settings = fetch_named_family(settings)
        if args.command == "ask":
            question = " ".join(args.question)
            if args.listen:
                question = listen_for_question(settings)
            elif not question:
                raise ConfigError("hearth ask needs a question (or --listen to ask aloud)")
            backend = backend_with_fallback(settings, endpoint, warn=warn)
            if args.shell:
                from tui.commands.shell import run_shell

                return run_shell(settings, question, backend)
            return run_ask(settings, question, backend, speak=args.speak, files=args.files)
        if settings.voice.audio_socket:  # the chat under hearth connect: its socket goes with it
            from voice.link import remove_socket

            atexit.register(remove_socket, settings.voice.audio_socket)  # also after a dropped connection
        return run_tui(settings, endpoint)
    except HearthError as error:
        warn(error.one_line())
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hearth ... | head`: the reader left; say nothing more
        _drop_stdout()
        return 0


def _unbroken(arg: str) -> str:
    """An argument as text: bytes that were not UTF-8 (kept by Python as lone surrogates) become
    U+FFFD instead of failing every later encode."""
    try:
        raw = arg.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that did not come from undecodable bytes
        raw = arg.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe does not
    print "Exception ignored ... BrokenPipeError" (the recipe in Python's signal docs)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


SWITCH_INTERVAL_S = 0.0005
"""The GIL switch interval while the chat runs, seconds (Python's default: 0.005)."""


def run_tui(settings: Settings, endpoint: str | None = None) -> int:
    # Textual loads only for the chat: `hearth ask` and the other commands never pay for it.
    from textual.theme import BUILTIN_THEMES as TEXTUAL_THEMES

    from themes import BUILTIN_THEMES
    from tui import event_loop
    from tui.app import HearthApp

    names = sorted({t.name for t in BUILTIN_THEMES} | set(TEXTUAL_THEMES))
    if settings.ui.theme not in names:
        raise ConfigError(f"unknown theme {settings.ui.theme!r}; choose one of: {', '.join(names)}")
    backend = make_backend(settings, endpoint)
    if backend is not None and backend.model_path is not None and settings.model.path:
        check_gguf_file(backend.model_path)  # a missing or non-GGUF file: one line, no TUI
    # (stdin too: the chat reads keys from it, and input that ends, as a file or pipe does, ends the chat)
    streams = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)) if not stream.isatty()]
    if os.environ.get("TERM", "") in ("dumb", "unknown") or streams:
        why = f"{' and '.join(streams)} {'is' if len(streams) == 1 else 'are'} not a terminal" if streams \
            else f"TERM is {os.environ.get('TERM')}"
        raise ConfigError(f"the chat needs a full terminal ({why}); for plain text use: hearth ask \"QUESTION\"")
    app = HearthApp(settings, backend, HistoryStore(paths.history_db_path()), str(paths.models_dir()))
    # The reply worker re-takes the GIL after each of the dozens of ctypes calls llama-cpp-python
    # makes per token; while the UI thread draws, each re-take waited up to the default 5 ms switch
    # interval (sys.getswitchinterval), which cost more generation speed than the drawing itself.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    event_loop.run(app.run_async())  # (what app.run does, on uvloop's loop where it is installed)
    return int(app.return_code or 0)


if __name__ == "__main__":
    raise SystemExit(main())

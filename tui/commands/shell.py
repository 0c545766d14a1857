"""``hearth ask --shell``: propose one command, and run it only when the user presses the run key.

With a terminal on stdin: the command, what it does, any risk it carries (deletes, overwrites a
disk, changes permissions recursively...), then one key: run, edit, describe, copy or abort.
Without one (a pipe, a script): the command alone on stdout, the explanation on stderr; nothing
ever runs. Everything the model wrote is made inert before it reaches the terminal.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading

from engine.chat.backend import ChatBackend, GenerationParams, TokenEvent
from engine.chat.shell_command import Suggestion, risks, suggest, this_shell
from engine.config import Settings
from engine.errors import ModelLoadError
from engine.sanitize import inert
from tui.commands.output import say, warn

CHOICES = "[r]un  [e]dit  [d]escribe  [c]opy  [a]bort? "


def run_shell(settings: Settings, request: str, backend: ChatBackend | None) -> int:
    """Propose a command for ``request`` and act on the user's key. Returns the exit status: the
    command's own when it ran, 0 when it was copied, aborted or (no terminal) printed.

    Raises:
        HearthError: no model, a model that does not load, a reply that is not a command.
    """
    if backend is None:
        raise ModelLoadError("no model: pass --model PATH or set model.path in the config")
    try:
        shell, system = this_shell()
        interactive = sys.stdin is not None and sys.stdin.isatty()
        if interactive:
            say("hearth: thinking…", file=sys.stderr)
        found = suggest(backend, request, settings.chat.temperature, shell=shell, system=system)
        if not interactive:  # a pipe or a script: print, never run
            say(found.command)
            warn(found.explanation)
            for risk in risks(found.command):
                warn(f"careful: this command {risk}")
            return 0
        return _choose(found, backend, settings)
    finally:
        backend.close()


def _show(found: Suggestion) -> None:
    print()
    say(f"  {found.command}")
    say(f"  # {found.explanation}")
    for risk in risks(found.command):
        say(f"  ⚠ careful: this command {risk}")
    print()


def _choose(found: Suggestion, backend: ChatBackend, settings: Settings) -> int:
    _show(found)
    while True:
        print(CHOICES, end="", flush=True)
        key = _read_key()
        print(key if key.isprintable() else "")
        if key in ("r", "R", "\r", "\n"):
            shell = os.environ.get("SHELL") or "/bin/sh"
            return subprocess.run(found.command, shell=True, executable=shell).returncode
        if key in ("e", "E"):
            edited = _edit(found.command)
            if edited:
                found = Suggestion(edited, "edited by you")
            _show(found)
        elif key in ("d", "D"):
            _describe(found.command, backend, settings)
        elif key in ("c", "C"):
            _copy(found.command)
            say("hearth: copied to the clipboard (OSC 52); nothing ran", file=sys.stderr)
            return 0
        elif key in ("a", "A", "q", "Q", "\x1b", "\x04"):
            say("hearth: aborted; nothing ran", file=sys.stderr)
            return 0


def _read_key() -> str:
    """One key from the terminal on stdin, without waiting for Enter (ctrl+c still interrupts)."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        return os.read(fd, 1).decode("utf-8", errors="replace") or "\x04"
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _edit(command: str) -> str:
    """The command, edited on one line (readline, prefilled); empty keeps it."""
    try:
        import readline
    except ImportError:  # no readline: type it again
        return input("edit> ").strip()
    def prefill() -> None:
        readline.insert_text(command)
        readline.redisplay()

    readline.set_pre_input_hook(prefill)
    try:
        return input("edit> ").strip()
    finally:
        readline.set_pre_input_hook(None)


def _describe(command: str, backend: ChatBackend, settings: Settings) -> None:
    """The model explains the command part by part, streamed (inert)."""
    messages = [{"role": "user", "content": f"Explain briefly, part by part, what this shell command does:\n{command}"}]
    params = GenerationParams(temperature=settings.chat.temperature, top_p=settings.chat.top_p, max_tokens=300)
    for event in backend.stream(messages, params, threading.Event()):  # type: ignore[arg-type]
        if isinstance(event, TokenEvent) and event.text:
            sys.stdout.write(inert(event.text))
            sys.stdout.flush()
    print("\n")


def _copy(command: str) -> None:
    """Put ``command`` on the terminal's clipboard with OSC 52 (works over SSH)."""
    encoded = base64.b64encode(command.encode("utf-8")).decode("ascii")
    sys.stdout.write(f"\x1b]52;c;{encoded}\x07")
    sys.stdout.flush()

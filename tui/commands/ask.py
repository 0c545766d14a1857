"""``hearth ask``: stream one answer as plain text to stdout, then exit.

Piped stdin is added to the question as context. No colour and no spinner are ever written to
stdout, so the output pipes cleanly; errors are one line on stderr (printed by the CLI).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import BinaryIO

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.session import ChatSession, ContextTrimmed
from engine.config import Settings
from engine.errors import HearthError, ModelLoadError
from tui.commands.output import warn
from voice.speak import SentenceSplitter, Speaker

MAX_CONTEXT_CHARS = 200_000
"""Most characters of piped stdin read (about 50k tokens; the context window trims the rest)."""


def build_prompt(question: str, context: str, files: list[tuple[str, str]] | None = None) -> str:
    """The user message: the question, then each file (``(name, text)``) and the piped input, each
    in a fenced block under its name."""
    parts = [question]
    for name, text in files or []:
        parts.append(f"File {name}:\n```\n{text.rstrip()}\n```")
    if context.strip():
        parts.append(f"Input:\n```\n{context.rstrip()}\n```")
    return "\n\n".join(parts)


def read_files(names: list[str]) -> list[tuple[str, str]]:
    """``(name, text)`` of each file given with ``-f``, together at most
    :data:`MAX_CONTEXT_CHARS` characters (UTF-8; other bytes become U+FFFD).

    Raises:
        HearthError: a file that cannot be read, or that is binary (a NUL byte in its first 8 KiB).
    """
    files, room = [], MAX_CONTEXT_CHARS
    for name in names:
        try:
            with open(name, "rb") as handle:
                data = handle.read(room * 4)
        except OSError as exc:
            raise HearthError(f"cannot read {name}: {exc.strerror or exc}", title="File error") from None
        if b"\0" in data[:8192]:
            raise HearthError(f"{name} is not a text file (hearth ask -f takes text)", title="File error")
        text = data.decode("utf-8", errors="replace")[:room]
        room -= len(text)
        files.append((name, text))
    return files


def read_piped(stream: BinaryIO) -> str:
    """Piped input as text: at most :data:`MAX_CONTEXT_CHARS` characters' worth of bytes, read as
    UTF-8 with anything else (Latin-1, binary) replaced by U+FFFD, never an error."""
    return stream.read(MAX_CONTEXT_CHARS * 4).decode("utf-8", errors="replace")[:MAX_CONTEXT_CHARS]


def fitted_prompt(question: str, context: str, files: list[tuple[str, str]], fits: Callable[[str], bool]) -> tuple[str, bool]:
    """The prompt of :func:`build_prompt`, with the start of every input (each file and the
    piped text) left out, at a line boundary, as far as needed for ``fits`` (the context window).
    Returns ``(prompt, whether anything was left out)``. The question is never cut: if it alone
    does not fit, the prompt without inputs is returned (and the session says it is too long)."""
    prompt = build_prompt(question, context, files)
    if (not context and not files) or fits(prompt):
        return prompt, False

    def keep(text: str, share: float) -> str:
        cut = len(text) - int(len(text) * share)
        if cut <= 0:
            return text
        newline = text.find("\n", cut)
        return text[newline + 1:] if newline >= 0 else text[cut:]

    def at(share: float) -> str:
        return build_prompt(question, keep(context, share), [(n, keep(t, share)) for n, t in files])

    low, high = 0.0, 1.0  # the largest share of each input that fits, to 1/1000
    while high - low > 0.001:
        mid = (low + high) / 2
        low, high = (mid, high) if fits(at(mid)) else (low, mid)
    return at(low), True


def run_ask(settings: Settings, question: str, backend, speak: bool = False, files: list[str] | None = None) -> int:
    """Answer ``question`` on stdout (and aloud, sentence by sentence, with ``speak``). Returns
    the exit code.

    Raises:
        HearthError: no model, a model that does not load, a prompt too long for the context, no
            TTS program (``speak``).
    """
    attached = read_files(files or [])  # a typo in a file name: said before any model loads
    if backend is None:
        raise ModelLoadError("no model: pass --model PATH or set model.path in the config")
    notice = backend.load().notice
    if notice:  # e.g. a base model with no chat template: said once, before the answer
        warn(notice)
    context = ""
    if sys.stdin is not None and not sys.stdin.isatty():
        context = read_piped(sys.stdin.buffer)
    session = ChatSession(backend, store=None, system_prompt=settings.chat.system_prompt)
    params = GenerationParams(
        temperature=settings.chat.temperature, top_p=settings.chat.top_p,
        max_tokens=settings.chat.max_tokens,
    )
    out = sys.stdout
    ended_with_newline = True
    speaker = splitter = None
    if speak:
        speaker, splitter = Speaker.for_settings(settings.voice), SentenceSplitter()
    try:
        budget = backend.n_ctx - min(params.max_tokens, backend.n_ctx // 2)  # as engine.chat.context fits it

        def fits(prompt: str) -> bool:
            return backend.count_tokens(session.with_system([{"role": "user", "content": prompt}])) <= budget

        prompt, trimmed = fitted_prompt(question, context, attached, fits)
        if trimmed:
            warn("the input was too long for the context window; the start of it was left out")
        for event in session.send(prompt, params, threading.Event()):
            if isinstance(event, TokenEvent) and event.text:
                out.write(event.text)
                out.flush()
                ended_with_newline = event.text.endswith("\n")
                if speaker is not None and splitter is not None:
                    for sentence in splitter.feed(event.text):
                        speaker.say(sentence)
            elif isinstance(event, ContextTrimmed):
                warn("the conversation was too long; its oldest part was left out")
        if not ended_with_newline:
            out.write("\n")
        out.flush()
        if speaker is not None and splitter is not None:
            for sentence in splitter.flush():
                speaker.say(sentence)
            speaker.idle.wait()
    finally:  # a reader that left (`| head`) raises BrokenPipeError: the CLI ends quietly
        if speaker is not None:
            speaker.close()
        backend.close()
    return 0

"""``hearth ask``: stream one answer as plain text to stdout, then exit.

Piped stdin is added to the question as context. No colour and no spinner are ever written to
stdout, so the output pipes cleanly; errors are one line on stderr (printed by the CLI).
"""

from __future__ import annotations

import sys
import threading
from typing import BinaryIO

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.session import ChatSession, ContextTrimmed
from engine.config import Settings
from engine.errors import ModelLoadError
from tui.commands.output import warn
from voice.speak import SentenceSplitter, Speaker

MAX_CONTEXT_CHARS = 200_000
"""Most characters of piped stdin read (about 50k tokens; the context window trims the rest)."""


def build_prompt(question: str, context: str) -> str:
    """The user message: the question, then the piped input in a fenced block."""
    if not context.strip():
        return question
    return f"{question}\n\nInput:\n```\n{context.rstrip()}\n```"


def read_piped(stream: BinaryIO) -> str:
    """Piped input as text: at most :data:`MAX_CONTEXT_CHARS` characters' worth of bytes, read as
    UTF-8 with anything else (Latin-1, binary) replaced by U+FFFD, never an error."""
    return stream.read(MAX_CONTEXT_CHARS * 4).decode("utf-8", errors="replace")[:MAX_CONTEXT_CHARS]


def run_ask(settings: Settings, question: str, backend, speak: bool = False) -> int:
    """Answer ``question`` on stdout (and aloud, sentence by sentence, with ``speak``). Returns
    the exit code.

    Raises:
        HearthError: no model, a model that does not load, a prompt too long for the context, no
            TTS program (``speak``).
    """
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
        speaker, splitter = Speaker(settings.voice.tts, piper_model=settings.voice.piper_model), SentenceSplitter()
    try:
        for event in session.send(build_prompt(question, context), params, threading.Event()):
            if isinstance(event, TokenEvent) and event.text:
                out.write(event.text)
                out.flush()
                ended_with_newline = event.text.endswith("\n")
                if speaker is not None and splitter is not None:
                    for sentence in splitter.feed(event.text):
                        speaker.say(sentence)
            elif isinstance(event, ContextTrimmed):
                print("hearth: the input was too long; the oldest part was left out", file=sys.stderr)
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

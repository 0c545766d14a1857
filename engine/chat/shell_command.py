"""Shell mode: one command for this machine's shell and a one-line explanation, from any model.

The reply is held to the shape ``{"command": "...", "explanation": "..."}`` while it is sampled:
a llama.cpp grammar (GBNF, :data:`GRAMMAR`) on the local backend, the same shape as a JSON
schema (:data:`SCHEMA`, OpenAI's ``response_format``) on a server. Both strings have bounded
lengths, so even the 135M starter model, which cannot be relied on to close a string, always
gives a well-formed answer within ``MAX_TOKENS``. Nothing here runs the command.
"""

from __future__ import annotations

import json
import os
import platform
import re
import threading
from dataclasses import dataclass

from engine.chat.backend import ChatBackend, GenerationParams, Message
from engine.errors import BackendError

COMMAND_CHARS = 200
EXPLANATION_CHARS = 160
MAX_TOKENS = 384
"""Enough for the longest allowed answer (360 characters of JSON strings, about 1.5 characters a
token at worst for shell syntax) and the keys around them."""

GRAMMAR = rf'''
root ::= "{{" ws "\"command\"" ws ":" ws command ws "," ws "\"explanation\"" ws ":" ws explanation ws "}}"
command ::= "\"" cchar{{1,{COMMAND_CHARS}}} "\""
explanation ::= "\"" tchar{{1,{EXPLANATION_CHARS}}} "\""
cchar ::= [^"\\\x00-\x1F\x7F] | "\\" ["\\]
tchar ::= [^"\\\x00-\x1F\x7F]
ws ::= " "?
'''
"""GBNF (llama.cpp's grammar format, grammars/README.md there): one JSON object with a one-line
command (quotes and backslashes escaped) and a one-line explanation, nothing before or after."""

SCHEMA = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "minLength": 1, "maxLength": COMMAND_CHARS},
        "explanation": {"type": "string", "minLength": 1, "maxLength": EXPLANATION_CHARS},
    },
    "required": ["command", "explanation"],
    "additionalProperties": False,
}
"""The same shape as a JSON schema, for servers (llama-server, vLLM, Ollama, LM Studio)."""


@dataclass(frozen=True)
class Suggestion:
    """A proposed command (one line) and what it does (one line)."""

    command: str
    explanation: str


def this_shell() -> tuple[str, str]:
    """``(shell, system)``: the user's shell by name (``$SHELL``'s last part, else ``sh``) and the
    system it runs on ("Debian GNU/Linux 12 (bookworm)", or ``platform.system()``)."""
    shell = os.path.basename(os.environ.get("SHELL", "")) or "sh"
    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except OSError:
        system = platform.system()
    return shell, system


def shell_prompt(shell: str, system: str) -> str:
    """The system prompt of shell mode."""
    return (f"You turn a request into exactly one {shell} command for {system}. Answer with a JSON "
            'object: "command" is the command on one line, "explanation" says in a few words what it '
            "does. Prefer standard tools that are installed everywhere.")


EXAMPLE: list[Message] = [
    {"role": "user", "content": "show the 5 biggest things in my home folder"},
    {"role": "assistant", "content": '{"command": "du -ah ~ | sort -rh | head -n 5", '
                                     '"explanation": "sizes of everything under ~, largest 5 first"}'},
]
"""One worked exchange before the request: small models copy a shape they have seen far better
than one they are told about."""


def suggest(backend: ChatBackend, request: str, temperature: float, cancel: threading.Event | None = None,
            shell: str | None = None, system: str | None = None) -> Suggestion:
    """Ask ``backend`` for one command doing ``request``.

    Raises:
        BackendError: the reply was not the JSON object asked for (a server that ignores
            ``response_format``), or generation failed.
        ModelLoadError, ContextOverflowError: as :meth:`ChatBackend.stream`.
    """
    if shell is None or system is None:
        shell, system = this_shell()
    messages: list[Message] = [{"role": "system", "content": shell_prompt(shell, system)}, *EXAMPLE,
                               {"role": "user", "content": request}]
    params = GenerationParams(temperature=temperature, top_p=0.95, max_tokens=MAX_TOKENS,
                              grammar=GRAMMAR, json_schema=SCHEMA)
    text = "".join(event.text for event in backend.stream(messages, params, cancel or threading.Event()))
    return parse(text)


def parse(text: str) -> Suggestion:
    """The suggestion in a reply.

    Raises:
        BackendError: not a JSON object with non-empty "command" and "explanation" strings.
    """
    try:
        data = json.loads(text)
        command, explanation = data["command"], data["explanation"]
    except (ValueError, TypeError, KeyError):
        raise BackendError(f"the model did not answer with a command: {text[:200]!r}") from None
    if not isinstance(command, str) or not isinstance(explanation, str):
        raise BackendError(f"the model did not answer with a command: {text[:200]!r}")
    command = " ".join(command.split("\n")).strip()  # a server's answer may hold a newline
    explanation = " ".join(explanation.split())
    if not command or not explanation:
        raise BackendError(f"the model answered with an empty command: {text[:200]!r}")
    return Suggestion(command, explanation)


# (what it does, pattern). Matched on the command text; a match is a warning shown before the
# choice, never a refusal: the user decides.
_RISKS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((what, re.compile(pattern)) for what, pattern in (
    ("deletes files", r"(^|[;&|(`]\s*|\bsudo\s+|\bxargs\s+(-\S+\s+)*)(rm|rmdir|shred|unlink)\b"),
    ("deletes files", r"\bfind\b.*\s-delete\b|\bfind\b.*-exec\s+(rm|shred)\b|\bgit\s+clean\b.*-\w*f"),
    ("overwrites a disk or partition", r"\bdd\b.*\bof=/dev/|>\s*/dev/(sd|hd|vd|nvme|mmcblk|disk)"),
    ("formats or repartitions a disk", r"\b(mkfs(\.\w+)?|wipefs|fdisk|sfdisk|parted|mkswap)\b"),
    ("changes permissions or owners recursively", r"\b(chmod|chown|chgrp)\b(\s+\S+)*?\s+(-\w*R\w*|--recursive)\b"),
    ("empties or overwrites files", r"\btruncate\b|(^|[^>&0-9])>\s*(?!/dev/null\b)[^\s>&|]"),
    ("runs as root", r"(^|[;&|]\s*)sudo\b"),
    ("runs a script from the network", r"\b(curl|wget)\b.*\|\s*(ba|z|da)?sh\b"),
))


def risks(command: str) -> list[str]:
    """What in ``command`` deletes, overwrites or changes more than it shows: each kind once,
    in the order of :data:`_RISKS` (empty: nothing flagged)."""
    found: list[str] = []
    for what, pattern in _RISKS:
        if what not in found and pattern.search(command):
            found.append(what)
    return found

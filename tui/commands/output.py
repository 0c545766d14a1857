"""How the commands print a line: made inert first (model names, file names, server model ids,
transcripts are untrusted), so nothing a file or a server says runs in the user's terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.sanitize import inert


def say(text: object, file: TextIO | None = None) -> None:
    """Print ``text`` as one inert line on ``file`` (stdout by default)."""
    print(inert(str(text), one_line=True), file=file or sys.stdout)


def warn(text: object) -> None:
    """Print ``hearth: text`` as one inert line on stderr."""
    say(f"hearth: {text}", file=sys.stderr)

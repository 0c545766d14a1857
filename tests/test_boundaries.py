"""engine/ and voice/ are a library: every one of their modules imports without Textual (or the
UI), in a fresh interpreter; the command-line commands that are not Textual do too."""

import pkgutil
import subprocess
import sys

import pytest

import engine
import voice


def modules_of(package) -> list[str]:
    """Every module of ``package``, found by walking it (not a hand-written list)."""
    return [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


LIBRARY = modules_of(engine) + modules_of(voice)


def test_the_walk_finds_the_library() -> None:
    assert {"engine.chat.session", "engine.models.fit", "voice.stt", "voice.capture"} <= set(LIBRARY)


@pytest.mark.parametrize("module", [*LIBRARY, "tui.commands.ask", "tui.commands.models", "tui.cli"])
def test_imports_without_textual(module: str) -> None:
    code = (f"import sys; import {module}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'themes') or m == 'tui.app'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_heavy_imports_are_lazy() -> None:
    """`hearth --help` and the CLI module do not pay for llama_cpp, faster_whisper or sounddevice."""
    code = ("import sys; import tui.cli, engine.chat.llama, engine.chat.factory; "
            "print([m for m in ('llama_cpp', 'faster_whisper', 'sounddevice', 'ctranslate2') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

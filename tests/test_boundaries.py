"""engine/ and voice/ are a library: they must import without Textual."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        "engine.config, engine.history, engine.session, engine.llama_backend, engine.context, "
        "engine.sanitize, engine.models, engine.logs, engine.starter_model, engine.gguf_info, "
        "engine.remote_backend, engine.backends",
        "voice",
        "tui.ask",
    ],
)
def test_imports_without_textual(modules: str) -> None:
    code = f"import sys; import {modules}; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_heavy_imports_are_lazy() -> None:
    """`hearth --help` and the CLI module do not pay for llama_cpp."""
    code = "import sys; import tui.cli, engine.llama_backend; print('llama_cpp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

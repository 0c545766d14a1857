"""Hostile text through every command-line path and the log: the same payloads (tests/hostile.py)
as a local model's file name, a GGUF's general.name, a path that does not exist, a server's error
body, reply and model id, a config key, an audio file's name. Each run must end with exit 0 or 1,
no traceback, and nothing but inert text on stdout, stderr and in the log."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from engine import paths
from tests.hostile import PAYLOADS, file_safe, forbidden_in, gguf_named
from tests.servers import MisbehavingServer
from tui.cli import main

PATHS = ["models-list-file", "models-info-name", "missing-model", "ask-server-error", "ask-server-reply",
         "models-list-endpoint", "models-rm", "models-import", "voice-file", "config-key", "log"]


@pytest.fixture(autouse=True)
def empty_stdin(monkeypatch) -> None:
    """Nothing piped in (the CLI runs in this process)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))


def _endpoint_config(tmp_path: Path, url: str, monkeypatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[endpoints.lab]\nurl = "{url}"\nread_timeout = 10\n')
    monkeypatch.setenv("HEARTH_CONFIG", str(config))


def _run(capsys, *args: str) -> tuple[str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code in (0, 1), (code, err)
    assert "Traceback" not in err
    return out, err


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_hostile_text_reaches_the_cli_inert(name: str, path: str, tmp_path: Path, capsys, monkeypatch) -> None:
    payload, _ = PAYLOADS[name]
    shown = ""
    if path == "models-list-file":
        gguf_named(paths.models_dir() / f"{file_safe(payload)}.gguf", payload)
        out, err = _run(capsys, "models", "list")
        shown = out + err
        assert "unreadable" not in shown  # the header was read, its file name printed
    elif path == "models-info-name":
        model = gguf_named(tmp_path / "named.gguf", payload)
        out, err = _run(capsys, "models", "info", str(model))
        shown = out + err
        assert "parameters" in out
    elif path == "missing-model":
        out, err = _run(capsys, "--model", f"/nonexistent/{file_safe(payload)}.gguf")
        shown = out + err
        assert "does not exist" in err and len(err.strip().splitlines()) == 1
    elif path in ("ask-server-error", "ask-server-reply", "models-list-endpoint"):
        mode = "hostile-error" if path == "ask-server-error" else "hostile-reply"
        server = MisbehavingServer(mode, payload=payload)
        try:
            _endpoint_config(tmp_path, server.url, monkeypatch)
            if path == "models-list-endpoint":
                out, err = _run(capsys, "models", "list", "--endpoint", "lab")
            else:
                out, err = _run(capsys, "ask", "--endpoint", "lab", "hi")
        finally:
            server.close()
        shown = out + err
        if path == "ask-server-error":
            assert "answered 500" in err and len(err.strip().splitlines()) == 1
        else:
            assert out.strip()
    elif path == "models-rm":
        shutil.copy(gguf_named(tmp_path / "x.gguf", "x"), paths.models_dir() / f"{file_safe(payload)}.gguf")
        out, err = _run(capsys, "models", "rm", "no-such-model")
        shown = out + err
        assert "there:" in err and len(err.strip().splitlines()) == 1
    elif path == "models-import":
        out, err = _run(capsys, "models", "import", f"/nonexistent/{file_safe(payload)}.gguf")
        shown = out + err
        assert len(err.strip().splitlines()) == 1
    elif path == "voice-file":
        audio = tmp_path / f"{file_safe(payload)}.wav"
        audio.write_bytes(b"RIFF not really a wave file")
        out, err = _run(capsys, "voice", "test", "--file", str(audio))
        shown = out + err
        assert "cannot read" in err and len(err.strip().splitlines()) == 1
    elif path == "config-key":
        config = tmp_path / "config.toml"
        config.write_text(f"[model]\n{json.dumps(payload)} = 1\n")
        monkeypatch.setenv("HEARTH_CONFIG", str(config))
        out, err = _run(capsys, "config", "check")
        shown = out + err
        assert "unknown key" in err and len(err.strip().splitlines()) == 1
    elif path == "log":
        model = gguf_named(tmp_path / f"{file_safe(payload)}.gguf", payload)
        _run(capsys, "ask", "--model", str(model), "hi")  # llama.cpp logs the name and path
        shown = paths.log_file().read_text(encoding="utf-8")
        assert model.name[:4] in shown or "llama" in shown
    assert not forbidden_in(shown), shown

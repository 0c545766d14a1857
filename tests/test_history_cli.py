"""`hearth history list|show|search|export`, run as a user runs them (a subprocess), on a real
history database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from engine.chat.history import HistoryStore

HEARTH = [sys.executable, "-m", "tui.cli"]
HOSTILE = "Simmer \x1b]52;c;aGVsbG8=\x07 the lentils \x1b[2J for 25 minutes."


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(home / "d"), "XDG_CONFIG_HOME": str(home / "c"),
           "XDG_STATE_HOME": str(home / "s"), "HOME": str(home)}
    return subprocess.run([*HEARTH, "history", *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    store = HistoryStore(tmp_path / "d" / "hearth" / "history.sqlite3")
    soup = store.create_chat("soup", model="SmolLM2-135M-Instruct.Q4_1")
    store.add_message(soup, "user", "How long should lentil soup simmer?")
    store.add_message(soup, "assistant", HOSTILE)
    store.add_message(soup, "user", "And the onions?")
    store.add_message(soup, "assistant", "Fry them first", "stopped")
    disks = store.create_chat("disks")
    store.add_message(disks, "user", "Which files fill my disk?")
    store.close()
    return tmp_path


def test_list_show_and_search(home: Path) -> None:
    listed = run(home, "list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["2", "1"]  # newest first
    shown = run(home, "show", "1")
    assert shown.returncode == 0 and "lentil soup simmer" in shown.stdout and "(stopped)" in shown.stdout
    found = run(home, "search", "lentils")
    assert found.returncode == 0
    lines = found.stdout.splitlines()
    assert len(lines) == 1 and lines[0].split()[0] == "1" and "soup" in lines[0] and "hearth:" in lines[0]
    assert datetime.now().strftime("%Y-%m-%d") in lines[0]
    for out in (shown.stdout, found.stdout):
        assert "\x1b" not in out and "\x07" not in out and "␛]52" in out  # inert, and visible
    assert run(home, "search", "no-such-word").returncode == 1


def test_export_json_round_trips_every_message(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "soup.json"
    done = run(home, "export", "1", "--format", "json", "-o", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    store = HistoryStore(home / "d" / "hearth" / "history.sqlite3")
    stored = store.messages(1)
    assert data["title"] == "soup" and data["model"] == "SmolLM2-135M-Instruct.Q4_1"
    assert [(m["role"], m["content"], m["status"]) for m in data["messages"]] == \
        [(m.role, m.content, m.status) for m in stored]  # the file holds the text unchanged
    assert [datetime.fromisoformat(m["created_at"]).timestamp() for m in data["messages"]] == \
        pytest.approx([m.created_at for m in stored], abs=1.0)


def test_export_markdown_to_stdout_is_inert(home: Path) -> None:
    done = run(home, "export", "1")
    assert done.returncode == 0
    assert done.stdout.startswith("# soup\n") and "**You**" in done.stdout and "**hearth**" in done.stdout
    assert "\x1b" not in done.stdout and "(stopped)" in done.stdout


def test_unknown_chat_is_one_line(home: Path) -> None:
    for action in ("show", "export"):
        done = run(home, action, "99")
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and "no chat 99" in done.stderr
        assert "Traceback" not in done.stderr

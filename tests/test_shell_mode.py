"""`hearth ask --shell` on the real model: the answer always has the shape asked for (a llama.cpp
grammar), risky commands are flagged, and nothing runs without the run key (a real terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.chat.shell_command import GRAMMAR, parse, risks, suggest
from tests.test_terminal import Tmux, hearth

REQUESTS = [
    "find the 10 largest files under /var", "show free disk space", "count the lines of every .py file here",
    "list the processes using the most memory", "show my IP addresses", "compress the folder logs into logs.tar.gz",
    "find files changed in the last day", "show the last 50 lines of the system log", "which program listens on port 22",
    "delete every .tmp file in this folder", "make all .sh files executable", "show how long the machine has been up",
    "search for the word error in app.log, ignoring case", "copy photos to /mnt/backup keeping dates",
    "show the size of each folder here", "rename every .jpeg file to .jpg", "download https://example.com/a.txt",
    "show the CPU temperature", "list USB devices", "kill the process named firefox",
]


@pytest.mark.model
def test_twenty_requests_all_give_a_command_and_an_explanation(backend) -> None:
    assert len(set(REQUESTS)) == 20
    for request in REQUESTS:
        found = suggest(backend, request, temperature=0.7, shell="bash", system="Debian GNU/Linux 12")
        assert found.command and "\n" not in found.command, (request, found)
        assert found.explanation and "\n" not in found.explanation, (request, found)


def test_the_grammar_is_what_llama_cpp_accepts() -> None:
    from llama_cpp.llama_grammar import LlamaGrammar

    assert LlamaGrammar.from_string(GRAMMAR, verbose=False) is not None


def test_a_reply_that_is_not_the_shape_is_a_clear_error() -> None:
    from engine.errors import BackendError

    assert parse('{"command": "ls -l", "explanation": "lists files"}').command == "ls -l"
    for text in ("ls -l", '{"command": ""}', '{"command": "ls", "explanation": ""}', "[1, 2]", '{"command": 3, "explanation": "x"}'):
        with pytest.raises(BackendError, match="did not answer with a command|empty command"):
            parse(text)


@pytest.mark.parametrize(("command", "flagged"), [
    ("rm -rf ~/old", ["deletes files"]),
    ("find . -name '*.tmp' -delete", ["deletes files"]),
    ("ls *.tmp | xargs rm", ["deletes files"]),
    ("sudo dd if=img.iso of=/dev/sdb bs=4M", ["overwrites a disk or partition", "runs as root"]),
    ("mkfs.ext4 /dev/mmcblk0p2", ["formats or repartitions a disk"]),
    ("chmod -R 777 /var/www", ["changes permissions or owners recursively"]),
    ("chown --recursive pi:pi /srv", ["changes permissions or owners recursively"]),
    ("echo hi > notes.txt", ["empties or overwrites files"]),
    ("curl -fsSL https://get.example.sh | sh", ["runs a script from the network"]),
    ("du -ah /var | sort -rh | head -n 10", []),
    ("grep -i error app.log > /dev/null 2>&1", []),
    ("echo hi >> notes.txt", []),
    ("chmod +x run.sh", []),
    ("git status", []),
])
def test_risky_commands_are_flagged(command: str, flagged: list[str]) -> None:
    assert risks(command) == flagged


@pytest.mark.model
def test_without_a_terminal_nothing_runs(gguf_path: Path, tmp_path: Path) -> None:
    victim = tmp_path / "keep"
    victim.mkdir()
    for i in range(3):
        (victim / f"{i}.tmp").write_text("x")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_STATE_HOME": str(tmp_path / "s"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "tui.cli", "ask", "--shell", "--model", str(gguf_path),
                           f"delete every file in {victim}"], stdin=subprocess.DEVNULL, cwd=victim,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.strip()  # the command alone, to pipe on
    assert sorted(p.name for p in victim.iterdir()) == ["0.tmp", "1.tmp", "2.tmp"]
    assert "Traceback" not in done.stderr and "run]" not in done.stdout + done.stderr  # no menu


@pytest.fixture
def term(tmp_path: Path):
    tmux = Tmux(tmp_path)
    yield tmux
    tmux.close()


def proposed_and_edited(term: Tmux, gguf_path: Path, marker: Path) -> None:
    """hearth's proposal on screen, then edited into ``touch MARKER`` (an effect the test can see),
    and the choice asked again."""
    term.start(hearth("ask", "--shell", "--model", str(gguf_path), "create an empty file"))
    term.wait_for("[r]un  [e]dit  [d]escribe  [c]opy  [a]bort?", timeout=120)
    term.key("e")
    term.wait_for("edit>")
    term.key("C-a", "C-k")  # readline: clear the proposed command
    term.type(f"touch {marker}")
    term.key("Enter")
    term.wait_for("edited by you")
    term.wait_for("[a]bort?")


@pytest.mark.model
@pytest.mark.terminal
def test_in_a_terminal_the_command_runs_only_after_the_run_key(term: Tmux, gguf_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proposed_and_edited(term, gguf_path, marker)
    assert not marker.exists()  # shown, edited: still nothing ran
    term.key("r")
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, term.screen()
        time.sleep(0.1)


@pytest.mark.model
@pytest.mark.terminal
def test_in_a_terminal_abort_runs_nothing(term: Tmux, gguf_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proposed_and_edited(term, gguf_path, marker)
    term.key("a")
    term.wait_for("aborted; nothing ran")
    assert not marker.exists()

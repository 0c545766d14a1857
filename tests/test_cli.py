"""`hearth ask` and the CLI's error lines, run as a user runs them (a subprocess)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEARTH = [sys.executable, "-m", "tui.cli"]


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HEARTH, *args], input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.model
def test_ask_answers_on_stdout(gguf_path: Path) -> None:
    result = run("ask", "--model", str(gguf_path), "--temperature", "0",
                 "What is the capital of France? Answer in one word.", stdin="")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert result.stderr == ""  # no llama.cpp log, no spinner
    assert "\x1b" not in result.stdout  # stdout is a pipe: no colour


@pytest.mark.model
def test_ask_uses_piped_stdin_as_context(gguf_path: Path) -> None:
    log = "2026-11-20 10:00:01 backup.service: error: disk /dev/sdb1 is full (100%)\n" * 3
    result = run("ask", "--model", str(gguf_path), "--temperature", "0", "--max-tokens", "60",
                 "Which disk is full? Answer with the device path only.", stdin=log)
    assert result.returncode == 0, result.stderr
    assert "sdb1" in result.stdout


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["ask", "--model", "/nonexistent/model.gguf", "hi"], None, "model file /nonexistent/model.gguf does not exist"),
        (["ask", "hi"], None, "no model: pass --model PATH"),
        (["ask", "hi"], "[model]\nn_ctxx = 5\n", "unknown key model.n_ctxx (did you mean 'n_ctx'?)"),
        (["ask", "hi"], "[chat]\ntemperature = \n", "TOML syntax error"),
        (["--model", "/nonexistent/m.gguf"], None, "does not exist"),
        (["--theme", "no-such-theme"], None, "unknown theme 'no-such-theme'"),
        (["ask", "--temperature", "9", "hi"], None, "chat.temperature = 9.0 is outside 0..5"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path: Path, args, config, message) -> None:
    env = {}
    if config is not None:
        path = tmp_path / "config.toml"
        path.write_text(config)
        env["HEARTH_CONFIG"] = str(path)
    result = run(*args, stdin="", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_not_gguf_and_truncated_are_refused(tmp_path: Path, gguf_path: Path) -> None:
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(gguf_path.read_bytes()[:3_000_000])
    for path, message in ((not_gguf, "is not a GGUF model"), (truncated, "corrupted or incomplete")):
        result = run("ask", "--model", str(path), "hi", stdin="")
        assert result.returncode == 1
        assert message in result.stderr and "Traceback" not in result.stderr


def test_help_is_quick_to_import() -> None:
    result = run("--help")
    assert result.returncode == 0 and "ask" in result.stdout


@pytest.mark.model
def test_models_bench_measures_once_and_speeds_are_shown(gguf_path: Path, tmp_path: Path) -> None:
    """`hearth models bench` measures this machine on the real starter model (numpy bandwidth,
    llama.cpp token time) and keeps it; info, list and recommend then show predicted tokens/s."""
    models = tmp_path / "data" / "hearth" / "models"
    models.mkdir(parents=True)
    (models / gguf_path.name).write_bytes(gguf_path.read_bytes())
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    kept = tmp_path / "cache" / "hearth" / "machine-speed.json"
    info = run("models", "info", str(gguf_path), env=env)
    assert info.returncode == 0 and "not measured yet (hearth models bench)" in info.stdout
    bench = run("models", "bench", env=env)
    assert bench.returncode == 0, bench.stderr
    assert "GB/s" in bench.stdout and "ms per token" in bench.stdout and kept.exists()
    info = run("models", "info", str(gguf_path), "--json", env=env)
    record = json.loads(info.stdout)
    assert record["predicted_tokens_per_s"] > 0 and record["bytes_per_token"] == record["estimate"]["weights"]
    listed = run("models", "list", env=env)
    assert re.search(r"~\d+ tok/s", listed.stdout), listed.stdout
    kept.unlink()  # recommend measures by itself when nothing is kept and the starter is here
    recommended = run("models", "recommend", env=env)
    assert recommended.returncode == 0 and "measuring this machine's speed once" in recommended.stderr
    assert "predicted" in recommended.stdout and "tokens/s here" in recommended.stdout and kept.exists()
    assert "Traceback" not in bench.stderr + recommended.stderr


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert re.fullmatch(r"hearth \S+ \(llama-cpp-python 0\.3\.\d+, Python 3\.\d+\.\d+\)\n", done.stdout), done.stdout


def test_bash_completion_completes_commands_actions_and_choices(tmp_path: Path) -> None:
    """The script `hearth completion bash` prints, sourced in a real bash and asked as bash asks
    when Tab is pressed (COMP_LINE/COMP_POINT/COMP_WORDS, then the completion function)."""
    venv_bin = str(Path(sys.executable).parent)
    script = textwrap.dedent('''
        eval "$(hearth completion bash)"
        ask() {
            COMP_LINE="$1"; COMP_POINT=${#1}; read -r -a COMP_WORDS <<< "$1"
            [[ "$1" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMPREPLY=()
            _python_argcomplete hearth "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            echo "${COMPREPLY[*]}"
        }
        ask "hearth hist"
        ask "hearth history "
        ask "hearth models "
        ask "hearth history export 3 --format "
    ''')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    lines = [set(line.split()) for line in done.stdout.splitlines()]
    assert lines[0] == {"history"}
    assert lines[1] - {"-h", "--help"} == {"list", "show", "search", "export"}
    assert lines[2] - {"-h", "--help"} == {"list", "recommend", "pull", "import", "rm", "info", "bench"}
    assert lines[3] == {"md", "json"}


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_scripts(shell: str) -> None:
    done = run("completion", shell)
    assert done.returncode == 0 and "hearth" in done.stdout and "_ARGCOMPLETE" in done.stdout


def test_ask_reads_files_as_context_with_their_names(gguf_path: Path, tmp_path: Path) -> None:
    from tui.commands.ask import build_prompt, read_files

    log = tmp_path / "backup.log"
    log.write_text("2026-11-20 10:00:01 backup.service: error: disk /dev/sdb1 is full (100%)\n" * 3)
    notes = tmp_path / "notes.txt"
    notes.write_text("Nothing to see here.\n")
    prompt = build_prompt("Q?", "", read_files([str(log), str(notes)]))
    assert f"File {log}:\n```\n2026-11-20" in prompt and f"File {notes}:\n```\nNothing" in prompt
    result = run("ask", "--model", str(gguf_path), "--temperature", "0", "--max-tokens", "60",
                 "-f", str(log), "Which disk is full? Answer with the device path only.", stdin="")
    assert result.returncode == 0, result.stderr
    assert "sdb1" in result.stdout and result.stderr == ""


def test_ask_trims_long_input_to_the_window_with_a_notice(gguf_path: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_text("".join(f"log line {i}\n" for i in range(3000)))  # ~23k tokens
    for how in (["-f", str(big)], []):  # a file, and the same text piped
        result = run("ask", "--model", str(gguf_path), "--n-ctx", "512", "--temperature", "0", "--max-tokens", "20",
                     *how, "What is the number in the last log line?", stdin="" if how else big.read_text())
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "hearth: the input was too long for the context window; the start of it was left out"
        assert result.stdout.strip()


def test_prompt_keeps_the_end_of_each_input_and_the_whole_question() -> None:
    from tui.commands.ask import build_prompt, fitted_prompt

    files = [("a.txt", "".join(f"a{i}\n" for i in range(100)))]
    context = "".join(f"p{i}\n" for i in range(100))
    prompt, trimmed = fitted_prompt("Q?", context, files, lambda p: len(p) < 400)
    assert trimmed and prompt.startswith("Q?\n\nFile a.txt:\n```\n") and len(prompt) < 400
    assert "a99\n" in prompt and "p99\n" in prompt and "a0\n" not in prompt and "p0\n" not in prompt
    assert fitted_prompt("Q?", context, files, lambda p: True) == (build_prompt("Q?", context, files), False)


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: str(d / "missing.txt"), "cannot read"),
    (lambda d: (d / "bin").write_bytes(b"\x7fELF\0\0\0") and str(d / "bin"), "is not a text file"),
])
def test_ask_file_errors_are_one_line(tmp_path: Path, make, message: str) -> None:
    result = run("ask", "-f", make(tmp_path), "hi")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "File error" in result.stderr and message in result.stderr and "Traceback" not in result.stderr


def test_ask_with_a_preset(gguf_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[chat]\ntemperature = 0.0\n\n[presets.terse]\nmax_tokens = 3\n'
                      'system_prompt = "You answer in one word."\n')
    env = {"HEARTH_CONFIG": str(config)}
    question = ("--model", str(gguf_path), "What is the capital of France?")
    terse = run("ask", "--preset", "terse", *question, env=env, stdin="")
    assert terse.returncode == 0, terse.stderr
    plain = run("ask", *question, env=env, stdin="")
    assert len(terse.stdout.split()) <= 3 < len(plain.stdout.split())  # the preset's max_tokens
    wider = run("ask", "--preset", "terse", "--max-tokens", "12", *question, env=env, stdin="")
    assert len(wider.stdout.split()) > 3  # a flag on top of the preset wins
    wrong = run("ask", "--preset", "tres", *question, env=env, stdin="")
    assert wrong.returncode == 1 and wrong.stderr.strip() == \
        "hearth: Config error: unknown preset 'tres' (did you mean 'terse'?)"


@pytest.mark.parametrize("command", [
    ["models"], ["models", "list"], ["models", "pull"], ["voice"], ["config"], ["history"],
    ["history", "search"], ["history", "export"], ["doctor"], ["completion"], ["connect"],
])
def test_each_command_help_lists_only_its_own_options(command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0 and done.stdout.startswith(f"usage: hearth {' '.join(command)}")
    for chat_flag in ("--temperature", "--system", "--top-p", "--preset", "--max-tokens"):
        assert chat_flag not in done.stdout, (command, chat_flag)


def test_ask_help_lists_the_chat_options() -> None:
    done = run("ask", "--help")
    for flag in ("--temperature", "--system", "--preset", "--shell", "--file", "--listen"):
        assert flag in done.stdout

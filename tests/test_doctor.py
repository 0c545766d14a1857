"""`hearth doctor`, run as a user runs it (a subprocess), on this machine as it is and with one
thing broken at a time: PortAudio missing, a damaged history database, a model too large."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cpu import choose_build, this_machine
from tests.cgroup import in_group, v1_memory_group

HEARTH = [str(Path(sys.executable).with_name("hearth"))]
MIB = 2**20


def env_for(tmp: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "c"), "XDG_DATA_HOME": str(tmp / "d"),
            "XDG_STATE_HOME": str(tmp / "s"), "XDG_CACHE_HOME": str(tmp / "k")}


def doctor(tmp: Path, *args: str, wrap=lambda argv: argv) -> subprocess.CompletedProcess:
    return subprocess.run(wrap([*HEARTH, "doctor", *args]), capture_output=True, text=True,
                          timeout=120, env=env_for(tmp))


def lines_of(done: subprocess.CompletedProcess) -> dict[str, str]:
    """{topic: whole line}; every line is "STATUS  topic  text"."""
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        status, topic = line.split()[:2]
        assert status in ("ok", "warn", "FAIL"), line
        found[topic] = line
    assert set(found) == {"python", "llama.cpp", "model", "config", "history", "microphone", "speech", "disk"}
    return found


@pytest.fixture
def set_up(tmp_path: Path, gguf_path: Path, audio: dict[str, Path]) -> Path:
    """A user's set-up: a config naming the model and the microphone, a chat in the history."""
    (tmp_path / "c" / "hearth").mkdir(parents=True)
    (tmp_path / "c" / "hearth" / "config.toml").write_text(
        f'[model]\npath = "{gguf_path}"\nn_ctx = 2048\n\n[voice]\ninput_device = "filemic"\n')
    from engine.chat.history import HistoryStore

    store = HistoryStore(tmp_path / "d" / "hearth" / "history.sqlite3")
    chat = store.create_chat("a chat")
    store.add_message(chat, "user", "hello")
    store.close()
    return tmp_path


def test_doctor_passes_every_check_on_this_machine(set_up: Path, gguf_path: Path) -> None:
    done = doctor(set_up)
    found = lines_of(done)
    assert done.returncode == 0, done.stdout
    assert all(line.startswith("ok") for line in found.values()), done.stdout
    picked = choose_build(*this_machine())  # what set-up built here: the doctor sees it in use
    uses = found["llama.cpp"].split("llama.cpp uses ")[1].split(";")[0].split()
    assert [o for o in picked.uses if o != "SSE42"] == [o for o in uses if o not in ("SSE3", "SSSE3")]
    assert ("AMX left out on purpose" in found["llama.cpp"]) == bool(picked.left_out)
    assert gguf_path.name in found["model"] and "fits" in found["model"]
    assert "1 chats, integrity_check ok" in found["history"]
    assert "filemic" in found["microphone"]


def test_missing_portaudio_is_one_line(set_up: Path) -> None:
    """PortAudio's library made unloadable for this run only (a private mount namespace binds
    /dev/null over it): the microphone line says what to install; chatting is unaffected."""
    lib = Path("/usr/lib/x86_64-linux-gnu/libportaudio.so.2")
    assert os.geteuid() == 0 and lib.exists(), "needs root (a mount namespace) and Debian's libportaudio2"
    hide = f"mount --bind /dev/null {lib.resolve()} && exec \"$@\""
    done = doctor(set_up, wrap=lambda argv: ["unshare", "--mount", "--propagation", "private",
                                             "sh", "-c", hide, "sh", *argv])
    found = lines_of(done)
    assert found["microphone"].startswith("warn") and "PortAudio is not installed" in found["microphone"]
    assert "apt-get install libportaudio2" in found["microphone"]
    assert done.returncode == 0 and found["model"].startswith("ok")


def test_damaged_history_is_one_line(set_up: Path) -> None:
    db = set_up / "d" / "hearth" / "history.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    data[page + 100: 2 * page] = b"\xff" * (page - 100)  # a page of the tables scribbled over
    db.write_bytes(bytes(data))
    done = doctor(set_up)
    found = lines_of(done)
    assert done.returncode == 1
    assert found["history"].startswith("FAIL") and "is damaged" in found["history"]
    assert "mv " in found["history"] and ".recover" in found["history"]
    assert db.exists()  # the doctor only reads


def test_model_too_large_is_one_line(set_up: Path) -> None:
    """In a real cgroup v1 memory group of 150 MiB the configured model does not fit."""
    with v1_memory_group(150 * MIB) as group:
        done = doctor(set_up, wrap=lambda argv: in_group(group, argv))
    found = lines_of(done)
    assert done.returncode == 1
    assert found["model"].startswith("FAIL") and "cgroup v1 memory.limit_in_bytes" in found["model"]
    assert "needs about" in found["model"]


def test_config_typo_is_one_line_and_the_rest_still_runs(set_up: Path) -> None:
    (set_up / "c" / "hearth" / "config.toml").write_text("[model]\nn_cxt = 2048\n")
    done = doctor(set_up)
    found = lines_of(done)
    assert done.returncode == 1
    assert found["config"].startswith("FAIL") and "n_ctx" in found["config"]  # the nearest valid key

"""Voice over SSH on real parts: a real OpenSSH server on 127.0.0.1 (tests/sshd.py), the "laptop"
side recording from and playing to file-backed ALSA devices through real PortAudio, the "Pi" side a
hearth reached through `hearth connect` in a real terminal (tmux). Both sides run on this machine
with their own XDG directories; the Pi's come from sshd's SetEnv, as a real remote's would."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.sshd import HOST_ALIAS, Server, sshd
from tests.test_terminal import NATIVE_AUDIO_MARKERS, REPO, Tmux
from tests.voicefixtures import ClockedSilence, make_audio

pytestmark = [pytest.mark.voice, pytest.mark.terminal]
REMOTE_HEARTH = str(Path(sys.executable).parent / "hearth")
"""The Pi's hearth: this venv's, named with --remote-hearth (sshd's PATH does not include it)."""


class Machines:
    """The laptop's and the Pi's directories, devices and config, and the sshd between them."""

    def __init__(self, root: Path, server: Server, pi_env: dict[str, str]) -> None:
        self.root = root
        self.server = server
        self.pi_env = pi_env
        self.laptop_env = {
            "XDG_CONFIG_HOME": str(root / "laptop" / "config"), "XDG_DATA_HOME": str(root / "laptop" / "data"),
            "XDG_STATE_HOME": str(root / "laptop" / "state"), "XDG_CACHE_HOME": str(root / "laptop" / "cache"),
            "XDG_RUNTIME_DIR": short_dir("laptop-run-"), "ALSA_CONFIG_PATH": str(root / "laptop" / "asound.conf"),
        }
        (root / "laptop").mkdir(parents=True, exist_ok=True)
        self.speaker_out = root / "laptop" / "speaker.raw"

    @property
    def laptop_run(self) -> Path:
        return Path(self.laptop_env["XDG_RUNTIME_DIR"])

    @property
    def pi_run(self) -> Path:
        return Path(self.pi_env["XDG_RUNTIME_DIR"])

    def laptop_devices(self, microphone: Path) -> None:
        """The laptop's ALSA devices: ``laptopmic`` playing ``microphone`` (raw 16 kHz s16le, or
        the FIFO of a :class:`ClockedSilence`; after its end the device gives silence) and
        ``laptopspeaker`` writing what is played to a file."""
        (self.root / "laptop" / "asound.conf").write_text(
            "</usr/share/alsa/alsa.conf>\n"
            f'pcm.laptopmic {{\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "{microphone}"\n format "raw"\n}}\n'
            f'pcm.laptopspeaker {{\n type file\n slave.pcm "null"\n file "{self.speaker_out}"\n format "raw"\n}}\n')
        config = self.root / "laptop" / "config" / "hearth"
        config.mkdir(parents=True, exist_ok=True)
        (config / "config.toml").write_text('[voice]\ninput_device = "laptopmic"\noutput_device = "laptopspeaker"\n')

    def connect(self, *rest: str, remote_hearth: str = REMOTE_HEARTH) -> list[str]:
        return [sys.executable, "-m", "tui.cli", "connect", "--ssh", self.server.ssh,
                "--remote-hearth", remote_hearth, HOST_ALIAS, *rest]

    def run(self, argv: list[str], wrap: list[str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*(wrap or []), *argv], cwd=REPO, env={**os.environ, **self.laptop_env},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    def leftovers(self) -> list[Path]:
        """What connect made and did not remove, on either side (espeak-ng's audio library may
        leave its own ``pulse`` directory in the Pi's runtime dir: not ours)."""
        return sorted(p for p in [*self.laptop_run.iterdir(), *self.pi_run.iterdir()] if p.name.startswith("hearth-"))


def short_dir(prefix: str) -> str:
    """A runtime directory as short as /run/user/UID (pytest's tmp_path is too long to hold
    socket paths: Linux takes 107 bytes)."""
    return tempfile.mkdtemp(prefix=prefix)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_audio(tmp_path_factory.mktemp("sounds"))


@pytest.fixture
def machines(tmp_path: Path, gguf_path: Path, speech_model: Path, sounds) -> Machines:
    pi = {name: str(tmp_path / "pi" / name.lower()) for name in
          ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}
    pi["XDG_RUNTIME_DIR"] = short_dir("pi-run-")
    config = Path(pi["XDG_CONFIG_HOME"]) / "hearth"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[model]\npath = "{gguf_path}"\nn_ctx = 1024\n[chat]\ntemperature = 0.0\nmax_tokens = 40\n'
        f'[voice]\nstt_model = "{speech_model}"\nauto_send = true\nspeak = true\nmax_seconds = 600\n')
    with sshd(tmp_path / "sshd", pi) as server:
        m = Machines(tmp_path, server, pi)
        m.laptop_devices(sounds["question16"])
        try:
            yield m
        finally:
            shutil.rmtree(m.laptop_run, ignore_errors=True)
            shutil.rmtree(m.pi_run, ignore_errors=True)


@pytest.fixture
def clocked_silence(tmp_path: Path):
    """The FIFO of a :class:`ClockedSilence`, written while the test runs."""
    silence = ClockedSilence(tmp_path / "silence.fifo")
    try:
        yield silence.path
    finally:
        silence.close()


def laptop_terminal(machines: Machines, tmp_path: Path) -> Tmux:
    term = Tmux(tmp_path)
    term.env = dict(machines.laptop_env)
    return term


def start_chat(term: Tmux, machines: Machines) -> None:
    shell = f"cd {shlex.quote(str(REPO))} && {shlex.join(machines.connect())}; echo connect-exit=$?; sleep 60"
    term.tmux("new-session", "-d", "-x", "100", "-y", "30", *[f"-e{k}={v}" for k, v in term.env.items()], shell)
    term.wait_for("Ask anything", timeout=60)


def wait_for_notice(term: Tmux, text: str, timeout: float = 30) -> str:
    """The notifications on screen (Textual's toasts, drawn after a "▌" edge and wrapped over
    several lines) as one line, once ``text`` is in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        toasts = " ".join(line.rsplit("▌", 1)[1].strip() for line in term.screen().splitlines() if "▌" in line)
        if text in " ".join(toasts.split()):
            return toasts
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in a notification:\n{term.screen()}")


def wait_for_audio(term: Tmux, seconds: float, timeout: float = 30) -> None:
    """Once the recording bar ("● REC  0.6 s ...") counts past ``seconds`` of audio received:
    the recording connection is open and audio flows through it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counted = re.search(r"REC\s+(\d+\.\d) s", term.screen())
        if counted and float(counted.group(1)) >= seconds:
            return
        time.sleep(0.1)
    raise AssertionError(f"the recording never counted {seconds} s of audio:\n{term.screen()}")


def sox_rms(raw: Path, rate: int) -> tuple[float, float]:
    """(seconds, RMS amplitude 0..1) of a raw s16le mono file, as `sox ... -n stat` reads it."""
    done = subprocess.run(["sox", "-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1", str(raw),
                           "-n", "stat"], capture_output=True, text=True, check=True)
    figures = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in done.stderr.splitlines() if ":" in line}
    return float(figures["Length (seconds)"]), float(figures["RMS     amplitude"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.model
def test_spoken_question_on_the_laptop_is_answered_on_the_pi_and_spoken_back(machines: Machines, tmp_path: Path) -> None:
    term = laptop_terminal(machines, tmp_path)
    try:
        start_chat(term, machines)
        # while connected: the sockets and their directories are owner-only on both sides
        [local] = list(machines.laptop_run.iterdir())
        [remote] = list(machines.pi_run.iterdir())
        assert remote.name.startswith("hearth-voice.")
        assert mode(local) == 0o700 and mode(remote) == 0o700
        assert stat.S_ISSOCK((local / "audio.sock").stat().st_mode) and mode(local / "audio.sock") == 0o600
        assert stat.S_ISSOCK((remote / "audio.sock").stat().st_mode) and mode(remote / "audio.sock") == 0o600
        assert mode(local / "ssh.ctl") == 0o600
        term.key("C-r")
        notice = wait_for_notice(term, "Recording from laptopmic on")
        assert f"Recording from laptopmic on {os.uname().nodename} (over SSH)" in notice
        screen = term.wait_for("Paris", timeout=120)
        assert "What is the capital of France?" in screen  # transcribed on the Pi, sent (auto_send)
        for marker in (*NATIVE_AUDIO_MARKERS, "Traceback"):
            assert marker not in screen, f"{marker!r} reached the terminal:\n{screen}"
        deadline = time.monotonic() + 60  # espeak-ng speaks the reply on the Pi, played here
        while time.monotonic() < deadline and not (machines.speaker_out.exists() and machines.speaker_out.stat().st_size > 22050):
            time.sleep(0.2)
        time.sleep(1.0)  # the rest of the sentence
        seconds, rms = sox_rms(machines.speaker_out, 22050)
        assert seconds > 1.0 and rms > 0.02, f"{seconds:.2f} s at RMS {rms}: not speech"
        term.key("C-q")
        term.wait_for("connect-exit=0", timeout=30)
    finally:
        term.close()
    assert machines.leftovers() == []


@pytest.mark.model
def test_relay_killed_mid_recording_is_a_notice_and_the_chat_goes_on(machines: Machines, clocked_silence,
                                                                     tmp_path: Path) -> None:
    """The laptop's end of the audio connection killed while the Pi records (a silent microphone
    at a microphone's pace and max_seconds 600 keep the recording going): one notice, no
    traceback, the chat answers typed questions; afterwards nothing is left on either side."""
    machines.laptop_devices(clocked_silence)
    term = laptop_terminal(machines, tmp_path)
    try:
        start_chat(term, machines)
        relay = subprocess.run(["pgrep", "-f", f"voice.relay {machines.laptop_run}"], capture_output=True, text=True)
        [relay_pid] = [int(p) for p in relay.stdout.split()]
        term.key("C-r")
        wait_for_audio(term, seconds=0.5)  # the bar shows at the key press; the link is open once audio counts
        os.kill(relay_pid, signal.SIGKILL)
        notice = wait_for_notice(term, "closed mid-recording")
        assert "the recording is cancelled" in notice and "Traceback" not in term.screen()
        term.type("What is the capital of France?")
        term.key("Enter")
        screen = term.wait_for("Paris", timeout=60)
        assert "Traceback" not in screen
        term.key("C-q")
        term.wait_for("connect-exit=0", timeout=30)
    finally:
        term.close()
    assert machines.leftovers() == []


def test_connection_killed_mid_recording_is_one_line_and_leaves_nothing(machines: Machines, clocked_silence,
                                                                         tmp_path: Path) -> None:
    """The SSH connection itself killed while the Pi records: hearth connect says so in one
    line (no traceback); the Pi's hearth exits on the hang-up and removes its socket; nothing is
    left on either side, no process lingers."""
    machines.laptop_devices(clocked_silence)
    term = laptop_terminal(machines, tmp_path)
    try:
        start_chat(term, machines)
        master = subprocess.run(["pgrep", "-f", "--", f"-M -S {machines.laptop_run}"], capture_output=True, text=True)
        [master_pid] = [int(p) for p in master.stdout.split()]
        term.key("C-r")
        wait_for_audio(term, seconds=0.5)
        os.kill(master_pid, signal.SIGKILL)
        screen = term.wait_for("connect-exit=1", timeout=30)
        assert "hearth: Connect: the connection to pi closed" in screen
        assert "Traceback" not in screen
    finally:
        term.close()
    pattern = f"audio-socket {machines.pi_run}|voice.relay {machines.laptop_run}"
    lingering = lambda: subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout  # noqa: E731
    deadline = time.monotonic() + 15  # the Pi's hearth saves and exits after the hang-up
    while time.monotonic() < deadline and (machines.leftovers() or lingering()):
        time.sleep(0.2)
    assert machines.leftovers() == []
    assert lingering() == ""


def test_voice_devices_over_ssh_names_the_laptops_microphone(machines: Machines) -> None:
    done = machines.run(machines.connect("voice", "devices"))
    assert done.returncode == 0, done.stderr
    assert f"microphone in use: laptopmic on {os.uname().nodename} (over SSH, through {machines.pi_run}/hearth-voice." in done.stdout
    assert f"speaker in use: laptopspeaker on {os.uname().nodename} (over SSH)" in done.stdout
    assert machines.leftovers() == []


def test_doctor_over_ssh_checks_the_laptops_microphone(machines: Machines) -> None:
    done = machines.run(machines.connect("doctor"))
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if "microphone" in line]
    assert line.startswith("ok") and f"push-to-talk records from laptopmic on {os.uname().nodename} (over SSH)" in line


def test_voice_test_over_ssh_transcribes_the_laptops_speech(machines: Machines) -> None:
    done = machines.run(machines.connect("voice", "test"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "What is the capital of France? Answer in one word."


def test_laptop_without_portaudio_warns_and_the_pi_says_so(machines: Machines) -> None:
    """libportaudio hidden on the laptop side only (a private mount namespace): one warning line
    from connect; the Pi's `voice devices` names the reason; nothing traced back."""
    lib = Path("/usr/lib/x86_64-linux-gnu/libportaudio.so.2")
    assert os.geteuid() == 0 and lib.exists(), "needs root (a mount namespace) and Debian's libportaudio2"
    hide = f"mount --bind /dev/null {lib.resolve()} && exec \"$@\""
    done = machines.run(machines.connect("voice", "devices"),
                        wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh"])
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "hearth: push-to-talk will not record: PortAudio is not installed" in done.stderr
    assert "microphone in use: none on" in done.stdout and "PortAudio is not installed" in done.stdout


def test_laptop_without_a_microphone_warns(machines: Machines, tmp_path: Path) -> None:
    (tmp_path / "laptop" / "asound.conf").write_text("</usr/share/alsa/alsa.conf>\n")  # no capture device
    done = machines.run(machines.connect("voice", "test"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    here = os.uname().nodename
    assert f"hearth: push-to-talk will not record: no microphone on {here}; text chat still works" in lines
    assert lines[-1] == f"hearth: Voice: no microphone on {here}; text chat still works"  # the Pi's, through ssh
    assert machines.leftovers() == []


@pytest.mark.parametrize("case", ["no ssh", "unreachable", "refused", "no hearth"])
def test_connect_failures_are_one_line(machines: Machines, case: str, tmp_path: Path) -> None:
    ssh, remote = machines.server.ssh, REMOTE_HEARTH
    if case == "no ssh":
        ssh = str(tmp_path / "no-such-ssh")
    elif case == "unreachable":
        ssh = f"{ssh} -p 1"  # nothing listens on port 1 of 127.0.0.1
    elif case == "refused":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
        ssh = f"{ssh} -i {tmp_path / 'stranger'}"
        ssh = ssh.replace(f"-F {machines.server.client_config}", f"-F {_without_identity(machines, tmp_path)}")
    elif case == "no hearth":
        remote = "hearth"  # not on the Pi's login PATH
    argv = [sys.executable, "-m", "tui.cli", "connect", "--ssh", ssh, "--remote-hearth", remote, HOST_ALIAS]
    done = machines.run(argv)
    expected = {"no ssh": "is not installed", "unreachable": "cannot reach pi (ssh: connect to host 127.0.0.1 port 1",
                "refused": "pi refused the login (", "no hearth": "pi has no hearth ('hearth' is not on its login PATH)"}
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("hearth: Connect: ") and expected[case] in lines[0], lines[0]
    assert machines.leftovers() == []
    assert subprocess.run(["pgrep", "-f", f"voice.relay {machines.laptop_run}"], capture_output=True).returncode == 1


def _without_identity(machines: Machines, tmp_path: Path) -> Path:
    """The client config without its (authorized) key."""
    config = tmp_path / "ssh_config_stranger"
    config.write_text("".join(line + "\n" for line in machines.server.client_config.read_text().splitlines()
                              if "IdentityFile" not in line))
    return config

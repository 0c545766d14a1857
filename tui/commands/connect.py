"""``hearth connect [user@]host [hearth options]``: the chat on another machine (a Pi) through the
user's own OpenSSH, with this machine's microphone and speaker carried over the same connection.

How (one SSH connection, one login — keys, agent, ``~/.ssh/config`` and password prompts as usual):

1. The relay (voice/relay.py, its own process) serves this machine's audio devices on
   ``audio.sock`` in a new owner-only directory here.
2. ``ssh -M -S ssh.ctl -N host`` opens the connection as a control master.
3. Through it, the remote makes its own owner-only directory (``mktemp -d``) and says where its
   hearth is (a login shell, so ``~/.local/bin`` from pipx is on the PATH).
4. ``ssh -O forward -R remote/audio.sock:local/audio.sock``: sshd listens on the remote socket
   (mode 0600: sshd's StreamLocalBindMask 0177) and forwards each connection to the relay.
   Nothing listens on a network port.
5. ``ssh -t host hearth --audio-socket remote/audio.sock [options]``: the chat, in this terminal.
6. Afterwards the remote directory, the connection, the relay and the local directory are removed
   (the remote hearth also removes its socket when it exits, for a connection that dropped).
"""

from __future__ import annotations

import argparse
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from engine import paths
from engine.config import Settings
from engine.errors import HearthError
from engine.sanitize import inert
from tui.commands.output import warn
from voice.link import REMOTE_PREFIX

SOCKET_NAME = "audio.sock"
CONTROL_NAME = "ssh.ctl"
CONNECT_TIMEOUT_S = 15
"""ssh's ConnectTimeout, seconds: an unreachable host is reported after this, not after TCP's
two minutes."""
RELAY_START_S = 20.0
"""Seconds to wait for the relay to listen (importing numpy and PortAudio on a slow laptop)."""


class ConnectError(HearthError):
    """``hearth connect`` could not open the chat on the other machine (no ssh, unreachable,
    login refused, no hearth there, forwarding refused)."""

    title = "Connect"


def ssh_command(args: argparse.Namespace) -> list[str]:
    """The ssh program and its own options: ``--ssh``, else ``$HEARTH_SSH``, else ``ssh`` (like
    git's GIT_SSH_COMMAND).

    Raises:
        ConnectError: the program is not installed.
    """
    command = shlex.split(getattr(args, "ssh", None) or os.environ.get("HEARTH_SSH") or "ssh")
    if not command or shutil.which(command[0]) is None:
        raise ConnectError(f"{command[0] if command else 'ssh'} is not installed, so hearth cannot reach "
                           "another machine (Debian/Raspberry Pi OS: sudo apt-get install openssh-client)")
    return command


def run_connect(args: argparse.Namespace, settings: Settings) -> int:
    """Open the chat on ``args.host`` with this machine's microphone and speaker; the remote
    hearth's exit code.

    Raises:
        ConnectError: see the class.
    """
    ssh = ssh_command(args)
    if args.host.startswith("-"):
        raise ConnectError(f"{args.host!r} is not a host name (hearth connect [user@]host [hearth options])")
    for signum in (signal.SIGHUP, signal.SIGTERM):  # the terminal closed, or a kill: clean up first
        signal.signal(signum, _exit_on_signal)
    with SshConnection(ssh, args.host) as connection:
        connection.start_relay(settings)
        connection.open()
        remote_hearth, remote_socket = connection.prepare_remote(args.remote_hearth)
        command = " ".join(shlex.quote(a) for a in ["exec", remote_hearth, "--audio-socket", remote_socket, *args.rest])
        code = subprocess.call([*connection.mux, "-t", args.host, "sh -lc " + shlex.quote(command)])
        if code == 255 and connection.closed(within=1.0):
            _reset_terminal()
            raise ConnectError(f"the connection to {args.host} closed; the chat there is saved (`hearth connect "
                               f"{args.host}`, then ctrl+o, opens it again)")
        return code


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


class SshConnection:
    """One OpenSSH connection to ``host`` (a control master) carrying this machine's audio: use
    as a context manager; leaving it removes everything it made (see :meth:`close`).

    Args:
        ssh: the ssh command and its options (:func:`ssh_command`).
        host: ``[user@]host`` as ssh takes it.
    """

    def __init__(self, ssh: list[str], host: str) -> None:
        self.ssh = ssh
        self.host = host
        self.local = paths.private_runtime_dir("hearth-connect-")
        self.local_socket = self.local / SOCKET_NAME
        self.mux = [*ssh, "-S", str(self.local / CONTROL_NAME)]
        """ssh through this connection (no new login)."""
        self.relay: subprocess.Popen | None = None
        self.master: subprocess.Popen | None = None
        self.remote_dir = ""
        self._errors: IO[str] | None = None

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.master is not None and self.master.poll() is None

    def closed(self, within: float) -> bool:
        """Whether the connection has ended, waiting up to ``within`` seconds (a killed master
        closes its sockets, which its clients see, a moment before it can be reaped)."""
        if self.master is None:
            return True
        try:
            self.master.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return False
        return True

    def start_relay(self, settings: Settings, argv: list[str] | None = None) -> None:
        """Serve this machine's devices at :attr:`local_socket` (``argv``: another relay program,
        for benchmarks); warns (one line) when there is no microphone — the chat still opens.

        Raises:
            ConnectError: the relay did not start.
        """
        self.relay = _start_relay(self.local_socket, settings, argv)

    def open(self) -> None:
        """Log in: the control master, once connected (prompts for a password or a host key go to
        the terminal as usual).

        Raises:
            ConnectError: ssh exited first: unreachable, refused, host key, ... (its last line).
        """
        control = self.local / CONTROL_NAME
        errors = self._errors = (self.local / "ssh.err").open("w+")
        self.master = subprocess.Popen(
            [*self.ssh, "-M", "-S", str(control), "-N", "-o", "ControlPersist=no",
             "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "ExitOnForwardFailure=yes",
             "-o", "ServerAliveInterval=10", self.host],
            stdout=subprocess.DEVNULL, stderr=errors)
        while not control.exists():
            if self.master.poll() is not None:
                errors.seek(0)
                raise ConnectError(_ssh_failure(self.host, errors.read()))
            time.sleep(0.02)

    def prepare_remote(self, remote_hearth: str) -> tuple[str, str]:
        """Find hearth on the remote (a login shell's PATH), make an owner-only directory there
        and forward a socket in it to :attr:`local_socket`: (hearth's path, the remote socket).

        Raises:
            ConnectError: no hearth there, the directory cannot be made, forwarding refused.
        """
        script = (f"h=$(command -v {shlex.quote(remote_hearth)}) || {{ echo hearth-missing; exit 0; }}; "
                  f'r=${{XDG_RUNTIME_DIR:-/tmp}}; [ ${{#r}} -le {paths.SOCKET_DIR_MAX} ] || r=/tmp; '
                  f'd=$(mktemp -d "$r/{REMOTE_PREFIX}XXXXXXXX") || exit 1; '
                  'echo "hearth=$h"; echo "dir=$d"')
        done = subprocess.run([*self.mux, self.host, "sh -lc " + shlex.quote(script)], capture_output=True,
                              text=True, timeout=60)
        found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        if "hearth-missing" in done.stdout.splitlines():
            raise ConnectError(f"{self.host} has no hearth ({remote_hearth!r} is not on its login PATH); install "
                               f"hearth there, or name it: hearth connect --remote-hearth PATH {self.host}")
        if done.returncode != 0 or "hearth" not in found or "dir" not in found:
            raise ConnectError(f"cannot prepare {self.host} for the audio socket "
                               f"({_last_line(done.stderr) or done.returncode})")
        self.remote_dir = found["dir"]
        remote_socket = f"{self.remote_dir}/{SOCKET_NAME}"
        forward = subprocess.run([*self.mux, "-O", "forward", "-R", f"{remote_socket}:{self.local_socket}",
                                  self.host], capture_output=True, text=True, timeout=30)
        if forward.returncode != 0:
            raise ConnectError(f"{self.host} refused to forward the audio socket ({_last_line(forward.stderr)}); "
                               f"its sshd needs AllowStreamLocalForwarding yes. For text chat alone: ssh -t "
                               f"{self.host} hearth")
        return found["hearth"], remote_socket

    def close(self) -> None:
        """Remove what was made, whatever happened: the remote directory (while the connection
        lasts), the connection, the relay, the local directory. Never raises."""
        if self.alive:
            assert self.master is not None
            if self.remote_dir.rsplit("/", 1)[-1].startswith(REMOTE_PREFIX):
                subprocess.run([*self.mux, self.host, f"rm -rf -- {shlex.quote(self.remote_dir)}"],
                               capture_output=True, timeout=10, check=False)
            subprocess.run([*self.mux, "-O", "exit", self.host], capture_output=True, timeout=10, check=False)
            try:
                self.master.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.master.kill()
        if self.relay is not None:
            try:
                if self.relay.stdin is not None:
                    self.relay.stdin.close()  # the relay exits when its stdin closes
                self.relay.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.relay.kill()
        if self._errors is not None:
            self._errors.close()
        shutil.rmtree(self.local, ignore_errors=True)


def _start_relay(path: Path, settings: Settings, argv: list[str] | None = None) -> subprocess.Popen:
    """The relay process serving this machine's devices at ``path``; warns (one line) when this
    machine has no microphone — the chat still opens.

    Raises:
        ConnectError: the relay did not start.
    """
    relay = subprocess.Popen([*(argv or [sys.executable, "-m", "voice.relay"]), str(path),
                              "--input-device", settings.voice.input_device,
                              "--output-device", settings.voice.output_device],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert relay.stdout is not None
    started = select.select([relay.stdout], [], [], RELAY_START_S)[0]
    line = relay.stdout.readline().strip() if started else f"no answer in {RELAY_START_S:.0f} s"
    if line != "ready":
        relay.kill()
        raise ConnectError(f"the audio relay did not start ({line or 'it exited'}; details in {paths.log_file()})")
    from voice.errors import VoiceError
    from voice.link import AudioLink

    try:
        info = AudioLink(str(path)).info()
    except VoiceError as error:
        warn(f"voice will not work: {error.message}")
        return relay
    if info.input is None:
        warn(f"push-to-talk will not record: {info.input_error}")
    if info.output is None and settings.voice.speak:
        warn(f"replies will not be spoken: {info.output_error}")
    return relay


TERMINAL_RESET = "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?1004l\x1b[?2004l\x1b[?25h\x1b[?1049l"
"""What the remote chat would have sent on a normal exit (xterm control sequences): mouse
reporting (1000/1002/1003, SGR 1006, urxvt 1015), focus events (1004) and bracketed paste (2004)
off, the cursor shown, the alternate screen left. A dropped connection never sends them."""


def _reset_terminal() -> None:
    if sys.stdout.isatty():
        sys.stdout.write(TERMINAL_RESET)
        sys.stdout.flush()


def _ssh_failure(host: str, stderr: str) -> str:
    """One line for ssh's failure to connect, from its own last line."""
    line = _last_line(stderr) or "ssh exited without a message"
    if "Permission denied" in line or "Too many authentication failures" in line:
        return f"{host} refused the login ({line}); check the user name and your key with: ssh {host}"
    if "Host key verification failed" in line or "REMOTE HOST IDENTIFICATION" in stderr:
        return f"{host}'s host key does not match the one known ({line}); check it with: ssh {host}"
    if any(s in line for s in ("resolve hostname", "Connection refused", "timed out", "No route",
                               "unreachable", "Connection closed", "reset by peer")):
        return f"cannot reach {host} ({line})"
    return f"ssh to {host} failed ({line})"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return inert(lines[-1], one_line=True) if lines else ""

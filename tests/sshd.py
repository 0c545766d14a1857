"""A real OpenSSH server on 127.0.0.1 for the voice-over-SSH tests and bench: Debian's sshd on a
free port, a throwaway host key and user key, and an ssh client config (``ssh -F``) that reaches
it as the host alias ``pi`` with strict host-key checking."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
HOST_ALIAS = "pi"


@dataclass(frozen=True)
class Server:
    port: int
    client_config: Path
    log: Path

    @property
    def ssh(self) -> str:
        """The ssh command for ``hearth connect --ssh`` / ``$HEARTH_SSH``."""
        return f"ssh -F {self.client_config}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def sshd(directory: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Run sshd until the block ends. ``env``: variables sshd sets in every session (the
    remote machine's own environment: its XDG directories, its config)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        for old in (directory / name, directory / f"{name}.pub"):
            old.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True)
    shutil.copy(directory / "user_key.pub", directory / "authorized_keys")
    port = _free_port()
    user = pwd.getpwuid(os.getuid()).pw_name
    set_env = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    config = directory / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {directory / 'host_key'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}", "StrictModes no", "PermitRootLogin yes",
        "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        f"PidFile {directory / 'sshd.pid'}", "AllowStreamLocalForwarding yes", "StreamLocalBindUnlink yes",
        "PrintMotd no", "PrintLastLog no", *([f"SetEnv {set_env}"] if set_env else []), "",
    ]))
    host_key = (directory / "host_key.pub").read_text().split()
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    client = directory / "ssh_config"
    client.write_text("\n".join([
        f"Host {HOST_ALIAS}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {user}",
        f"  IdentityFile {directory / 'user_key'}", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {directory / 'known_hosts'}", "  StrictHostKeyChecking yes",
        "  BatchMode yes", "  LogLevel ERROR", "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = directory / "sshd.log"
    server = subprocess.Popen([str(SSHD), "-D", "-f", str(config), "-E", str(log)])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {log.read_text() if log.exists() else server.returncode}")
            time.sleep(0.05)
        yield Server(port, client, log)
    finally:
        server.terminate()
        server.wait(timeout=10)

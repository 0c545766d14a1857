"""A real cgroup v1 memory group for one test (these machines mount the v1 memory controller)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

V1_MEMORY = Path("/sys/fs/cgroup/memory")


@contextlib.contextmanager
def v1_memory_group(limit_bytes: int) -> Iterator[Path]:
    """A fresh group under /sys/fs/cgroup/memory limited to ``limit_bytes``, removed afterwards.
    Run a command in it with :func:`in_group`."""
    assert (V1_MEMORY / "memory.limit_in_bytes").exists(), "this machine has a cgroup v1 memory controller"
    group = V1_MEMORY / f"hearth-test-{os.getpid()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        yield group
    finally:
        group.rmdir()


def in_group(group: Path, argv: list[str]) -> list[str]:
    """``argv`` wrapped so that it runs inside ``group`` (the shell joins it, then execs)."""
    return ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *argv]

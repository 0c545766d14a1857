"""How much memory this machine can give a model: MemAvailable, capped by every cgroup memory limit
on the process's path (a container, a systemd slice; cgroup v2 ``memory.max`` and cgroup v1
``memory.limit_in_bytes``), minus a safety margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from engine.models.estimate import MIB

SAFETY_MARGIN = 0.10
"""Share of the available memory kept free: hearth's UI (~25 MiB), page cache for the rest of the
system, and the estimate's own error."""
MIN_MARGIN = 128 * MIB
"""The margin is at least this much, for machines with little RAM."""


@dataclass(frozen=True)
class MemoryBudget:
    """What the machine can give a model, bytes. ``source`` says where the figure came from."""

    available: int
    margin: int
    source: str

    @property
    def usable(self) -> int:
        return max(self.available - self.margin, 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usable": self.usable}


CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED_V1 = 2**62
"""cgroup v1 reports "no limit" as the largest page-aligned counter (9223372036854771712 on
x86-64 with 4 KiB pages); anything this large is no limit."""


@dataclass(frozen=True)
class _Hierarchy:
    """Where one cgroup hierarchy keeps a process's memory limit and use."""

    mount: Path
    path: str
    limit_file: str
    usage_file: str
    version: str


def _hierarchies(root: Path, proc_cgroup: Path) -> list[_Hierarchy]:
    """The memory hierarchies of this process, from /proc/self/cgroup (cgroup(7)): the unified
    one ("0::PATH", limits in memory.max) and a v1 memory controller ("N:memory:PATH",
    memory.limit_in_bytes under ROOT/memory)."""
    try:
        rows = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    found = []
    for row in rows:
        number, _, rest = row.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            found.append(_Hierarchy(root, path, "memory.max", "memory.current", "v2"))
        elif "memory" in controllers.split(","):
            found.append(_Hierarchy(root / "memory", path, "memory.limit_in_bytes",
                                    "memory.usage_in_bytes", "v1"))
    return found


def _cgroup_room(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> tuple[int, str] | None:
    """Bytes left under the tightest memory limit on this process's cgroup path, in either
    hierarchy: a group's limit minus its use, the least over the group and every ancestor (a
    parent's limit holds its children too). In a container whose cgroup directory is mounted as
    the root, the path from /proc/self/cgroup does not exist under the mount and the root's own
    limit is the container's.

    Returns:
        (bytes, "cgroup v2 memory.max" or "cgroup v1 memory.limit_in_bytes"), or ``None`` when no
        limit is set.
    """
    rooms: list[tuple[int, str]] = []
    for hierarchy in _hierarchies(root, proc_cgroup):
        parts = Path(hierarchy.path.strip().lstrip("/")).parts
        for depth in range(len(parts), -1, -1):
            directory = hierarchy.mount.joinpath(*parts[:depth])
            try:
                limit = (directory / hierarchy.limit_file).read_text().strip()
                used = int((directory / hierarchy.usage_file).read_text().strip())
            except (OSError, ValueError):
                continue
            if limit != "max" and int(limit) < UNLIMITED_V1:
                rooms.append((int(limit) - used, f"cgroup {hierarchy.version} {hierarchy.limit_file}"))
    return min(rooms) if rooms else None


def memory_budget(ram: int | None = None) -> MemoryBudget:
    """Memory a model may use: MemAvailable (psutil), capped by the tightest cgroup memory limit
    (v2 ``memory.max``, v1 ``memory.limit_in_bytes``, nested limits included); swap
    and zram are not counted (weights do not compress, and a swapped model is unusable). A margin
    of :data:`SAFETY_MARGIN` (at least :data:`MIN_MARGIN`) is kept free.

    Args:
        ram: bytes to plan for instead (``--ram``): the margin is still kept.
    """
    if ram is not None:
        available, source = ram, "--ram"
    else:
        available, source = psutil.virtual_memory().available, "MemAvailable"
        room = _cgroup_room()
        if room is not None and room[0] < available:
            available, source = max(room[0], 0), room[1]
    margin = max(int(available * SAFETY_MARGIN), MIN_MARGIN)
    return MemoryBudget(available, margin, source)

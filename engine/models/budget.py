"""How much memory this machine can give a model: MemAvailable, capped by the cgroup memory limit
of the process (a container, a systemd slice), minus a safety margin."""

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


def _cgroup_room(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes left under the tightest cgroup v2 ``memory.max`` on this process's path (the limit
    minus ``memory.current``); ``None`` when no limit is set (or not cgroup v2)."""
    try:
        line = next(row for row in proc_cgroup.read_text().splitlines() if row.startswith("0::"))
    except (OSError, StopIteration):
        return None
    relative = Path(line[3:].strip().lstrip("/"))
    rooms = []
    for depth in range(len(relative.parts), -1, -1):
        directory = root.joinpath(*relative.parts[:depth])
        try:
            limit = (directory / "memory.max").read_text().strip()
            current = int((directory / "memory.current").read_text().strip())
        except (OSError, ValueError):
            continue
        if limit != "max":
            rooms.append(int(limit) - current)
    return min(rooms) if rooms else None


def memory_budget(ram: int | None = None) -> MemoryBudget:
    """Memory a model may use: MemAvailable (psutil), capped by a cgroup v2 ``memory.max``; swap
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
        if room is not None and room < available:
            available, source = max(room, 0), "cgroup memory.max"
    margin = max(int(available * SAFETY_MARGIN), MIN_MARGIN)
    return MemoryBudget(available, margin, source)

"""`hearth ask` on the starter model inside real cgroup memory limits (issue: fit everywhere):
each limit either answers or is refused before loading with the figures; never an OOM kill.

cgroup v1 (``memory.limit_in_bytes``, a group under /sys/fs/cgroup/memory) and, where the machine
mounts the memory controller on the unified hierarchy, cgroup v2 (``memory.max``). Run as root.

Run: .venv/bin/python -m bench.cgroup_refusal
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.models.starter import ensure_starter_model

MIB = 2**20
LIMITS_MIB = (150, 300, 450, 700)
V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


def run_in_group(group: Path, limit_file: str, limit: int, model: Path) -> tuple[str, int, str]:
    group.mkdir()
    try:
        (group / limit_file).write_text(str(limit))
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/c", "XDG_DATA_HOME": f"{home}/d",
                   "XDG_STATE_HOME": f"{home}/s", "XDG_CACHE_HOME": f"{home}/k"}
            done = subprocess.run(
                ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh",
                 str(Path(sys.executable).with_name("hearth")), "ask", "--model", str(model), "--n-ctx", "4096",
                 "--max-tokens", "16", "What is the capital of France?"],
                capture_output=True, text=True, timeout=300, env=env)
        oom = 0
        if (group / "memory.oom_control").exists():
            oom = int(dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
                      .get("oom_kill", "0"))
        elif (group / "memory.events").exists():
            oom = int(dict(line.split() for line in (group / "memory.events").read_text().splitlines())["oom_kill"])
    finally:
        group.rmdir()
    outcome = ("refused" if done.returncode == 1 and "needs about" in done.stderr else
               "answered" if done.returncode == 0 else f"exit {done.returncode}")
    return outcome, oom, (done.stderr.strip().splitlines() or [""])[-1]


def main() -> None:
    model = ensure_starter_model(Path.home() / ".cache" / "hearth-test")
    v2_memory = "memory" in (V2 / "cgroup.controllers").read_text().split() if (V2 / "cgroup.controllers").exists() else False
    hierarchies = [("v1", V1, "memory.limit_in_bytes")] if (V1 / "memory.limit_in_bytes").exists() else []
    if v2_memory:
        hierarchies.append(("v2", V2, "memory.max"))
    else:
        print("cgroup v2: the memory controller is not on the unified hierarchy here: not measured")
    print(f"{'cgroup':6} {'limit':>8} {'outcome':9} {'OOM kills':>9}  message")
    for version, root, limit_file in hierarchies:
        for limit in LIMITS_MIB:
            outcome, oom, message = run_in_group(root / f"hearth-bench-{os.getpid()}-{limit}", limit_file,
                                                 limit * MIB, model)
            print(f"{version:6} {limit:>5} MiB {outcome:9} {oom:>9}  {message[:110]}")


if __name__ == "__main__":
    main()

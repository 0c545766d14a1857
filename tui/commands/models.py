"""``hearth models ...``: local models with their fit, and one model's metadata and memory estimate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import humanfriendly

from engine import paths
from engine.chat.factory import make_remote
from engine.chat.llama import default_threads
from engine.config import Settings
from engine.errors import ConfigError, ModelLoadError
from engine.models import speed as machine_speed
from engine.models.budget import MemoryBudget, memory_budget
from engine.models.catalog import find_model
from engine.models.discover import discover_models
from engine.models.estimate import MemoryEstimate, mib
from engine.models.fetch import RemoteFile, RemoteHeader, download, read_remote_header, remote_file
from engine.models.fit import meta_estimator
from engine.models.gguf import read_gguf
from engine.models.picker import Plan, plan_family, recommend
from engine.models.speed import MachineSpeed, bytes_per_token
from engine.models.starter import FILENAME as STARTER_FILENAME
from engine.models.starter import ensure_starter_model
from engine.models.store import import_model, pull, remove_model, resolve_family, with_hub_sizes
from tui.commands.output import say


def run_models(args: argparse.Namespace, settings: Settings, endpoint: str | None) -> int:
    """Dispatch ``hearth models ACTION``; returns the exit status.

    Raises:
        HearthError: bad size, missing or unreadable model, unreachable endpoint.
    """
    budget = memory_budget(parse_size(args.ram) if args.ram else None)
    n_ctx = args.ctx or settings.model.n_ctx
    needs_target = {"info": "the GGUF file: hearth models info PATH",
                    "pull": "a family from the catalog: hearth models pull Qwen2.5-1.5B-Instruct[:Q4_K_M]",
                    "import": "the GGUF file: hearth models import PATH",
                    "rm": "the model's file name: hearth models rm NAME.gguf"}
    if args.action in needs_target and not args.target:
        raise ConfigError(f"hearth models {args.action} needs {needs_target[args.action]}")
    if args.action == "bench":
        return _bench(settings, args.json)
    if args.action == "info":
        return _info(args.target, n_ctx, budget, args.json, known_speed())
    if args.action == "recommend":
        return _recommend(args.target, n_ctx, budget, args.json, this_machine(settings),
                          settings.models.min_tokens_per_s)
    if args.action == "pull":
        speed = known_speed()

        def announce(header: RemoteHeader, estimate: MemoryEstimate) -> None:
            predicted = speed.tokens_per_s(bytes_per_token(header.meta)) if speed else None
            say(f"{header.meta.path.name}: fits, needs {mib(estimate.needed)} at n_ctx {n_ctx} of the "
                f"{mib(budget.usable)} this machine can give{_speed_text(predicted)} (from its header: "
                f"{header.bytes_read / 1024:.0f} KB read)", file=sys.stderr)

        pulled = pull(args.target, n_ctx, budget, download=download_with_bar, announce=announce)
        if pulled.n_ctx != n_ctx:
            say(f"hearth: chosen for n_ctx {pulled.n_ctx} (nothing fits at {n_ctx}); "
                  f"run it with --n-ctx {pulled.n_ctx}", file=sys.stderr)
        say(pulled.path)
        return 0
    if args.action == "import":
        say(import_model(Path(args.target).expanduser(), paths.models_dir()))
        return 0
    if args.action == "rm":
        say(f"removed {remove_model(args.target, paths.models_dir())}")
        return 0
    return _list(settings, endpoint, n_ctx, budget, args.json)


def parse_size(text: str) -> int:
    """Bytes from ``4G``, ``3.5GiB``, ``512M`` (binary units, as RAM is sold and reported).

    Raises:
        ConfigError: not a size, or under 1 MiB (a unit was surely left out).
    """
    try:
        size = int(humanfriendly.parse_size(text, binary=True))
    except humanfriendly.InvalidSize:
        raise ConfigError(f"{text!r} is not a size (examples: 4G, 3.5GiB, 512M)") from None
    if size < 2**20:  # "4" parses as 4 bytes: surely 4G was meant
        raise ConfigError(f"{text!r} is {size} bytes, not a size of RAM (examples: 4G, 3.5GiB, 512M)")
    return size


def known_speed() -> MachineSpeed | None:
    """This machine's kept speed measurement, if there is one."""
    return machine_speed.load(paths.machine_speed_path())


def this_machine(settings: Settings) -> MachineSpeed | None:
    """This machine's speed: kept, or measured now (once, a few seconds, on the starter model,
    said on stderr) when the starter model is already here; else ``None``."""
    kept = known_speed()
    starter = paths.models_dir() / STARTER_FILENAME
    if kept is not None or not starter.exists():
        return kept
    return _measure(settings, starter)


def _measure(settings: Settings, starter: Path) -> MachineSpeed:
    threads = settings.model.n_threads or default_threads()
    say(f"hearth: measuring this machine's speed once ({threads} threads, a few seconds)…", file=sys.stderr)
    try:
        speed = machine_speed.measure(starter, read_gguf(starter), threads)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelLoadError(f"could not measure this machine's speed with {starter.name}: {exc}") from None
    machine_speed.save(speed, paths.machine_speed_path())
    return speed


def _bench(settings: Settings, as_json: bool) -> int:
    """Measure this machine again (on the starter model, fetched if needed) and keep the result."""
    speed = _measure(settings, ensure_starter_model(paths.models_dir()))
    if as_json:
        print(json.dumps({"bandwidth_bytes_per_s": speed.bandwidth, "fixed_s_per_token": speed.fixed_s,
                          "threads": speed.threads}, indent=2))
        return 0
    say(f"memory bandwidth {speed.bandwidth / 1e9:.1f} GB/s with {speed.threads} threads; "
        f"{1000 * speed.fixed_s:.1f} ms per token beyond reading the weights")
    say(f"so a model reading 1 GB per token: about {speed.tokens_per_s(10**9):.1f} tokens/s "
        f"(kept in {paths.machine_speed_path()})")
    return 0


def _speed_text(tokens_per_s: float | None) -> str:
    return f"  ~{tokens_per_s:.0f} tok/s" if tokens_per_s is not None and tokens_per_s >= 10 else (
        f"  ~{tokens_per_s:.1f} tok/s" if tokens_per_s is not None else "")


def _list(settings: Settings, endpoint: str | None, n_ctx: int, budget: MemoryBudget, as_json: bool) -> int:
    """Models on the endpoint's server (``/v1/models``), or the local GGUF files with their fit."""
    rows: list[dict[str, Any]] = []
    speed = known_speed()
    if endpoint:
        rows = [{"name": name, "endpoint": endpoint} for name in make_remote(settings, endpoint).list_models()]
    else:
        for model in discover_models(paths.models_dir()):
            path = model.path
            row: dict[str, Any] = {"name": model.name, "source": model.source, "path": str(path), "size_bytes": model.size}
            try:
                meta = read_gguf(path)
                needed = meta_estimator(meta)(n_ctx).needed
                row |= {"quantization": meta.quantization, "estimate_bytes": needed,
                        "fits": needed <= budget.usable,
                        "predicted_tokens_per_s": speed.tokens_per_s(bytes_per_token(meta)) if speed else None}
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the rest
                row |= {"error": str(getattr(exc, "message", exc))}
            rows.append(row)
    if as_json:
        print(json.dumps({"n_ctx": n_ctx, "budget": budget.as_dict(), "models": rows}, indent=2)
              if not endpoint else json.dumps(rows, indent=2))
        return 0
    if not endpoint:
        say(f"budget {mib(budget.usable)} ({budget.source} {mib(budget.available)} minus "
              f"{mib(budget.margin)} margin), n_ctx {n_ctx}")
    for row in rows:
        if "size_bytes" not in row:
            say(row["name"])
        elif "error" in row:
            say(f"{row['name']}  {mib(row['size_bytes']):>12}  unreadable: {row['error']}")
        else:
            fit = "fits" if row["fits"] else "too large"
            where = "" if row["source"] == "hearth" else f"  ({row['source']}: {row['path']})"
            say(f"{row['name']}  {row['quantization'] or '?':7} {mib(row['size_bytes']):>12}  "
                  f"needs {mib(row['estimate_bytes']):>12}  {fit}{_speed_text(row['predicted_tokens_per_s'])}{where}")
    return 0


def _info(target: str, n_ctx: int, budget: MemoryBudget, as_json: bool, speed: MachineSpeed | None) -> int:
    """A local GGUF, or ``OWNER/REPO/FILE.gguf`` on the hub (only its header is read)."""
    path = Path(target).expanduser()
    source = ""
    on_hub = not target.startswith(("/", ".", "~")) and target.count("/") >= 2 and target.endswith(".gguf")
    if on_hub and not path.exists():
        owner, repo, name = target.split("/", 2)
        remote = remote_file(f"{owner}/{repo}", name)
        header = read_remote_header(remote)
        meta, size = header.meta, remote.size or 0
        source = f"on the hub: {header.bytes_read / 1024:.0f} KB of {mib(size)} read (the header)"
    else:
        meta, size = read_gguf(path), path.stat().st_size
    estimate = meta_estimator(meta)(n_ctx)
    fits = estimate.needed <= budget.usable
    predicted = speed.tokens_per_s(bytes_per_token(meta)) if speed else None
    record = {
        "path": str(path), "name": meta.name, "architecture": meta.architecture,
        "quantization": meta.quantization, "n_params": meta.n_params, "file_bytes": size,
        "n_ctx": n_ctx, "n_ctx_train": meta.arch.n_ctx_train, "n_layer": meta.arch.n_layer,
        "n_embd": meta.arch.n_embd, "n_head": meta.arch.n_head, "n_head_kv": meta.arch.n_head_kv,
        "n_vocab": meta.arch.n_vocab, "estimate": estimate.as_dict(), "budget": budget.as_dict(),
        "fits": fits, "missing_metadata": list(meta.missing), "bytes_per_token": bytes_per_token(meta),
        "predicted_tokens_per_s": predicted,
    }
    if as_json:
        print(json.dumps(record, indent=2))
        return 0
    approx = " (approximate: missing " + ", ".join(meta.missing) + ")" if meta.missing else ""
    say(f"{meta.name}  {meta.architecture}, {meta.n_params / 1e6:.0f}M parameters, "
          f"{meta.quantization or '?'}, trained context {meta.arch.n_ctx_train}")
    if source:
        say(source)
    say(f"memory at n_ctx {n_ctx}{approx}:")
    for part in ("weights", "kv_cache", "compute", "overhead"):
        say(f"  {part:9} {mib(getattr(estimate, part)):>12}")
    say(f"  {'total':9} {mib(estimate.total):>12}  (resident set)")
    if estimate.reclaimable:
        say(f"  {'needed':9} {mib(estimate.needed):>12}  (less {mib(estimate.reclaimable)} of mapped "
              "originals of repacked tensors: page cache the kernel can drop)")
    say(f"budget {mib(budget.usable)} ({budget.source} {mib(budget.available)} minus "
          f"{mib(budget.margin)} margin): {'fits' if fits else 'does NOT fit'}")
    if predicted is not None:
        say(f"speed: about {predicted:.1f} tokens/s here ({mib(bytes_per_token(meta))} read per token)")
    else:
        say("speed: not measured yet (hearth models bench)")
    return 0


def _recommend(family: str | None, n_ctx: int, budget: MemoryBudget, as_json: bool,
               speed: MachineSpeed | None, min_tokens_per_s: float) -> int:
    note = ""
    if family:
        model, sizes, note = with_hub_sizes(find_model(family))
        family_plan = plan_family(model, n_ctx, budget, sizes)
        family_plan.predict(speed)
        plan: Plan | None = family_plan
    else:
        plan = recommend(n_ctx, budget, speed=speed, min_tokens_per_s=min_tokens_per_s)
        note = "sizes estimated from the catalog"
    if plan is None:
        raise ModelLoadError(f"no catalog model fits the {mib(budget.usable)} this machine can give")
    if as_json:
        print(json.dumps(plan.as_dict() | {"sizes": note}, indent=2))
        return 0
    say(f"{plan.model.family} ({plan.model.repo}), n_ctx {plan.n_ctx}; budget {mib(budget.usable)} "
          f"({budget.source} {mib(budget.available)} minus {mib(budget.margin)} margin); {note}")
    for option in plan.options:
        mark = "->" if plan.pick is not None and option.quant == plan.pick.quant else ("  " if option.fits else " x")
        tps = _speed_text(speed.tokens_per_s(option.size)) if speed is not None else ""
        say(f" {mark} {option.quant:7} file {mib(option.size):>12}  needs {mib(option.estimate.needed):>12}"
              f"{'' if option.fits else '  too large'}{tps}")
    say(plan.reason)
    return 0 if plan.pick is not None else 1


def download_with_bar(remote: RemoteFile, dest: Path) -> Path:
    """:func:`engine.models.fetch.download` with a progress bar on stderr (bytes, rate, ETA)."""
    # rich's progress bar loads only when a download starts, not with every command
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(remote.name, total=remote.size)
        return download(remote, dest, lambda p: bar.update(task, completed=p.done))


def fetch_named_family(settings: Settings) -> Settings:
    """:func:`engine.models.store.resolve_family` with the CLI's progress bar."""
    return resolve_family(settings, download=download_with_bar)

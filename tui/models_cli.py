"""``hearth models ...``: local models with their fit, and one model's metadata and memory estimate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine import paths
from engine.backends import make_backend
from engine.config import Settings
from engine.errors import ConfigError
from engine.memory import MemoryBudget, file_estimator, memory_budget, mib, parse_size


def run_models(args: argparse.Namespace, settings: Settings, endpoint: str | None) -> int:
    """Dispatch ``hearth models ACTION``; returns the exit status.

    Raises:
        HearthError: bad size, missing or unreadable model, unreachable endpoint.
    """
    budget = memory_budget(parse_size(args.ram) if args.ram else None)
    n_ctx = args.ctx or settings.model.n_ctx
    if args.action == "info":
        if not args.target:
            raise ConfigError("hearth models info needs the GGUF file: hearth models info PATH")
        return _info(Path(args.target).expanduser(), n_ctx, budget, args.json)
    return _list(settings, endpoint, n_ctx, budget, args.json)


def _list(settings: Settings, endpoint: str | None, n_ctx: int, budget: MemoryBudget, as_json: bool) -> int:
    """Models on the endpoint's server (``/v1/models``), or the local GGUF files with their fit."""
    if endpoint:
        names = make_backend(settings, endpoint).list_models()
        rows = [{"name": name, "endpoint": endpoint} for name in names]
    else:
        from engine.gguf_meta import read_gguf
        from engine.models import local_models

        rows = []
        for path in local_models(paths.models_dir()):
            row = {"name": path.name, "path": str(path), "size_bytes": path.stat().st_size}
            try:
                meta = read_gguf(path)
                total = file_estimator(path)(n_ctx).total
                row |= {"quantization": meta.quantization, "estimate_bytes": total,
                        "fits": total <= budget.usable}
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the rest
                row |= {"error": str(getattr(exc, "message", exc))}
            rows.append(row)
    if as_json:
        print(json.dumps({"n_ctx": n_ctx, "budget": budget.as_dict(), "models": rows}, indent=2)
              if not endpoint else json.dumps(rows, indent=2))
        return 0
    if not endpoint:
        print(f"budget {mib(budget.usable)} ({budget.source} {mib(budget.available)} minus "
              f"{mib(budget.margin)} margin), n_ctx {n_ctx}")
    for row in rows:
        if "size_bytes" not in row:
            print(row["name"])
        elif "error" in row:
            print(f"{row['name']}  {mib(row['size_bytes']):>12}  unreadable: {row['error']}")
        else:
            fit = "fits" if row["fits"] else "too large"
            print(f"{row['name']}  {row['quantization'] or '?':7} {mib(row['size_bytes']):>12}  "
                  f"needs {mib(row['estimate_bytes']):>12}  {fit}")
    return 0


def _info(path: Path, n_ctx: int, budget: MemoryBudget, as_json: bool) -> int:
    from engine.gguf_meta import read_gguf

    meta = read_gguf(path)
    estimate = file_estimator(path)(n_ctx)
    fits = estimate.total <= budget.usable
    record = {
        "path": str(path), "name": meta.name, "architecture": meta.architecture,
        "quantization": meta.quantization, "n_params": meta.n_params, "file_bytes": path.stat().st_size,
        "n_ctx": n_ctx, "n_ctx_train": meta.arch.n_ctx_train, "n_layer": meta.arch.n_layer,
        "n_embd": meta.arch.n_embd, "n_head": meta.arch.n_head, "n_head_kv": meta.arch.n_head_kv,
        "n_vocab": meta.arch.n_vocab, "estimate": estimate.as_dict(), "budget": budget.as_dict(),
        "fits": fits, "missing_metadata": list(meta.missing),
    }
    if as_json:
        print(json.dumps(record, indent=2))
        return 0
    approx = " (approximate: missing " + ", ".join(meta.missing) + ")" if meta.missing else ""
    print(f"{meta.name}  {meta.architecture}, {meta.n_params / 1e6:.0f}M parameters, "
          f"{meta.quantization or '?'}, trained context {meta.arch.n_ctx_train}")
    print(f"memory at n_ctx {n_ctx}{approx}:")
    for part in ("weights", "kv_cache", "compute", "overhead"):
        print(f"  {part:9} {mib(getattr(estimate, part)):>12}")
    print(f"  {'total':9} {mib(estimate.total):>12}")
    print(f"budget {mib(budget.usable)} ({budget.source} {mib(budget.available)} minus "
          f"{mib(budget.margin)} margin): {'fits' if fits else 'does NOT fit'}")
    return 0

"""hearth's model store: fetch catalog models into the models directory, import GGUFs the user
already has, remove them. The CLI (``hearth models``) and the TUI's model screen both call these;
how progress is shown is theirs (the ``download`` argument)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from engine import paths
from engine.config import Settings, with_overrides
from engine.errors import ConfigError, FetchError, HubUnreachable
from engine.models.budget import MemoryBudget, memory_budget
from engine.models.catalog import CatalogModel, find_model, load_catalog, parse_quant
from engine.models.discover import find_local
from engine.models.estimate import MemoryEstimate, mib
from engine.models.fetch import DISK_RESERVE, RemoteFile, RemoteHeader, partial_path, read_remote_header, remote_file
from engine.models.fetch import download as plain_download
from engine.models.fit import meta_estimator
from engine.models.gguf import read_gguf
from engine.models.picker import plan_family

Downloader = Callable[[RemoteFile, Path], Path]
"""Fetches a remote file to a path (:func:`engine.models.fetch.download` plus some way of showing progress)."""


def hub_sizes(model: CatalogModel) -> tuple[dict[str, int], str]:
    """Real file sizes of ``model``'s quantizations from the hub (HEAD requests; quantizations
    the repository lacks are left out); on the first failure to connect, none (the catalog's
    estimates are used) and a note saying so."""
    sizes: dict[str, int] = {}
    for quant in model.quants:
        try:
            remote = remote_file(model.repo, model.file_name(quant), timeout=5.0)
        except HubUnreachable:
            return {}, "offline: sizes estimated from the catalog"
        except FetchError:
            continue  # this quantization is missing from the repository
        if remote.size:
            sizes[quant] = remote.size
    return sizes, "sizes from the hub"


def with_hub_sizes(model: CatalogModel) -> tuple[CatalogModel, dict[str, int], str]:
    """``model`` narrowed to the quantizations its hub repository has, their sizes, and a note;
    unchanged (catalog estimates) when the hub cannot be reached."""
    sizes, note = hub_sizes(model)
    if sizes:
        model = dataclasses.replace(model, quants=tuple(q for q in model.quants if q in sizes))
    return model, sizes, note


@dataclasses.dataclass(frozen=True)
class Pulled:
    """A fetched model and the context size it was chosen for (tokens; smaller than asked when
    only a smaller context fits)."""

    path: Path
    n_ctx: int


Announce = Callable[[RemoteHeader, MemoryEstimate], None]
"""Told what a model needs, from its header on the hub, before its weights are downloaded."""


def pull(spec: str, n_ctx: int, budget: MemoryBudget, download: Downloader | None = None,
         announce: Announce | None = None) -> Pulled:
    """Download ``FAMILY[:QUANT]`` into hearth's models directory: the named quantization, or
    the picker's choice for ``n_ctx`` and ``budget`` (with the hub's real sizes), through
    ``download`` (:func:`engine.models.fetch.download` without progress by default). An existing
    complete file is reused.

    Before a byte of weights moves, the file's header is read from the hub (HTTP range,
    :func:`engine.models.fetch.read_remote_header`): its real estimate at ``n_ctx`` must fit
    ``budget``; ``announce`` is told the figures.

    Raises:
        ConfigError: unknown family or quantization.
        FetchError: as :func:`engine.models.fetch.download`; nothing fits (no quantization named);
            the header says the file does not fit (nothing is downloaded).
    """
    family, _, quant = spec.partition(":")
    model = find_model(family)
    if quant:
        quant = parse_quant(quant)
        if quant not in model.quants:
            raise ConfigError(f"{model.family} has no {quant} in the catalog ({', '.join(model.quants)})")
    else:
        available, sizes, _ = with_hub_sizes(model)
        plan = plan_family(available, n_ctx, budget, sizes)
        if plan.pick is None:
            raise FetchError(plan.reason)
        quant, n_ctx = plan.pick.quant, plan.n_ctx
    dest = paths.models_dir() / model.file_name(quant)
    if not dest.exists():
        remote = remote_file(model.repo, model.file_name(quant))
        header = read_remote_header(remote)
        estimate = meta_estimator(header.meta)(n_ctx)
        if estimate.needed > budget.usable:
            raise FetchError(f"{remote.name} needs about {mib(estimate.needed)} at n_ctx {n_ctx} (from its "
                             f"header on the hub), but this machine can give {mib(budget.usable)}: "
                             "not downloaded")
        if announce is not None:
            announce(header, estimate)
        (download or plain_download)(remote, dest)
    return Pulled(dest, n_ctx)


def import_model(source: Path, models_dir: Path) -> Path:
    """Copy a GGUF the user already has into hearth's models directory (checked first: a
    readable GGUF header, enough disk space); returns the new path.

    Raises:
        ModelLoadError: not a readable GGUF.
        FetchError: not enough disk space, or the copy failed.
    """
    read_gguf(source)
    dest = models_dir / source.name
    if dest.exists() and dest.stat().st_size == source.stat().st_size:
        return dest
    size, free = source.stat().st_size, shutil.disk_usage(models_dir).free
    if size + DISK_RESERVE > free:
        raise FetchError(f"not enough disk space to import {source.name}: {mib(size)} needed, {mib(free)} free")
    partial = partial_path(dest)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise FetchError(f"cannot copy {source} to {dest}: {exc.strerror}") from None
    return dest


def remove_model(name: str, models_dir: Path) -> Path:
    """Delete ``name`` (a file name, with or without ``.gguf``) from hearth's models directory;
    models found elsewhere (Hugging Face cache, Ollama, LM Studio) are never deleted.

    Raises:
        ConfigError: no such model in the models directory.
    """
    file = name if name.endswith(".gguf") else f"{name}.gguf"
    path = models_dir / Path(file).name
    if Path(file).name != file or not path.is_file():
        known = ", ".join(p.name for p in sorted(models_dir.glob("*.gguf"))) or "none"
        raise ConfigError(f"no model {name!r} in {models_dir} (there: {known})")
    path.unlink()
    return path


def resolve_family(settings: Settings, download: Downloader | None = None) -> Settings:
    """``hearth --model FAMILY[:QUANT]``: when ``model.path`` names neither a file nor a model
    found on this machine but a catalog family, fetch the pick for this machine (with a progress
    bar) and return settings pointing at it; otherwise the settings unchanged.

    Raises:
        FetchError: the download failed.
    """
    name = settings.model.path
    if not name or Path(name).expanduser().exists() or find_local(name, paths.models_dir()):
        return settings
    family = name.partition(":")[0].lower()
    if family not in {m.family.lower() for m in load_catalog()}:
        return settings  # not a family: the backend reports the missing file
    pulled = pull(name, settings.model.n_ctx, memory_budget(), download)
    return with_overrides(settings, model__path=str(pulled.path), model__n_ctx=pulled.n_ctx)


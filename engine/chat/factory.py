"""Which backend to chat with: a named endpoint's server, or the local GGUF model; and the local
model as the fallback of an endpoint that cannot be reached."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine import paths
from engine.chat.backend import ChatBackend
from engine.chat.kv_state import KVStateStore
from engine.chat.llama import LlamaBackend
from engine.config import Settings
from engine.errors import ConfigError, ModelLoadError
from engine.models.discover import resolve_model_path
from engine.models.fit import check_fits

if TYPE_CHECKING:
    from engine.chat.remote import RemoteBackend


def kv_state_store(settings: Settings) -> KVStateStore:
    """Where chats' saved KV states live, capped at ``model.state_cache_mib`` MiB."""
    return KVStateStore(paths.kv_state_dir(), settings.model.state_cache_mib * 2**20)


def make_remote(settings: Settings, endpoint: str) -> RemoteBackend:
    """The backend of the endpoint named ``endpoint``.

    Raises:
        ConfigError: no such endpoint in the config.
    """
    if endpoint not in settings.endpoints:
        known = ", ".join(sorted(settings.endpoints)) or "none configured"
        raise ConfigError(f"no endpoint {endpoint!r} in the config ([endpoints.NAME]; known: {known})")
    from engine.chat.remote import RemoteBackend  # httpx: loaded when an endpoint is used, not at start

    return RemoteBackend(endpoint, settings.endpoints[endpoint])


def make_backend(settings: Settings, endpoint: str | None = None) -> ChatBackend | None:
    """The backend to chat with: the named endpoint's server, else the llama.cpp backend for the
    resolved model (refused before loading if it would not fit the memory budget, unless
    ``model.check_fit`` is off), else ``None`` when there is no model.

    Raises:
        ConfigError: ``endpoint`` is not in the config.
    """
    if endpoint:
        return make_remote(settings, endpoint)
    path = resolve_model_path(settings, paths.models_dir())
    if path is None:
        return None
    m = settings.model
    return LlamaBackend(path, n_ctx=m.n_ctx, n_threads=m.n_threads, n_batch=m.n_batch, seed=m.seed,
                        state_store=kv_state_store(settings),
                        fit_check=check_fits if m.check_fit else None)


def local_fallback(settings: Settings, backend: ChatBackend | None) -> ChatBackend | None:
    """The local model, when ``backend`` is an endpoint configured with ``fallback = "local"``
    and there is a local model; else ``None``."""
    if backend is None or backend.fallback != "local":
        return None
    return make_backend(settings)


def backend_with_fallback(settings: Settings, endpoint: str | None,
                          warn: Callable[[str], None]) -> ChatBackend | None:
    """:func:`make_backend`, and for an endpoint with ``fallback = "local"`` that cannot be
    reached, the local model instead (``warn`` is told why). Loads an endpoint's backend.

    Raises:
        HearthError: as :func:`make_backend`, or the endpoint's load error when there is no
            local model to fall back to.
    """
    backend = make_backend(settings, endpoint)
    if backend is not None and backend.insecure_warning:
        warn(backend.insecure_warning)
    if backend is not None and backend.fallback == "local":
        try:
            backend.load()
        except ModelLoadError as error:
            local = local_fallback(settings, backend)
            if local is None:
                raise
            warn(f"{error.message}; using the local model instead")
            return local
    return backend

"""Which backend to chat with: a named endpoint's server, or the local GGUF model."""

from __future__ import annotations

from engine import paths
from engine.config import Settings
from engine.errors import ConfigError


def make_backend(settings: Settings, endpoint: str | None = None):
    """The backend to chat with: the named endpoint's server, else the llama.cpp backend for the
    resolved model, else ``None`` when there is no model.

    Raises:
        ConfigError: ``endpoint`` is not in the config.
    """
    if endpoint:
        from engine.remote_backend import RemoteBackend

        if endpoint not in settings.endpoints:
            known = ", ".join(sorted(settings.endpoints)) or "none configured"
            raise ConfigError(f"no endpoint {endpoint!r} in the config ([endpoints.NAME]; known: {known})")
        return RemoteBackend(endpoint, settings.endpoints[endpoint])
    from engine.llama_backend import LlamaBackend
    from engine.models import resolve_model_path

    path = resolve_model_path(settings, paths.models_dir())
    if path is None:
        return None
    from engine.kv_state import KVStateStore

    m = settings.model
    store = KVStateStore(paths.kv_state_dir(), m.state_cache_mib * 2**20)
    return LlamaBackend(path, n_ctx=m.n_ctx, n_threads=m.n_threads, n_batch=m.n_batch, seed=m.seed,
                        state_store=store, check_fit=m.check_fit)

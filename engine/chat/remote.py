"""A chat backend on an OpenAI-compatible server (llama-server, Ollama, vLLM, LM Studio, ...).

Streams ``POST {url}/chat/completions`` with ``stream: true`` over server-sent events (httpx +
httpx-sse). Cancelling closes the response, which closes the connection, and the server stops
generating. The API key is read from the environment variable the config names, sent only in the
``Authorization`` header, and never logged, stored or shown.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from engine.chat.backend import GenerationParams, Message, ModelInfo, TokenEvent
from engine.config import EndpointSettings
from engine.errors import BackendError, ModelLoadError
from engine.http_cancel import StreamWatch, closed_on_cancel

LOG = logging.getLogger("hearth.remote")

CHARS_PER_TOKEN = 4
"""Servers do not tokenize for us, so history trimming estimates tokens as characters / 4 (the
usual rule of thumb for English BPE vocabularies; OpenAI's tokenizer guide gives ~4 characters
per token), plus a few tokens of template per message."""
TEMPLATE_TOKENS_PER_MESSAGE = 4


class RemoteBackend:
    """One named endpoint.

    Args:
        name: the endpoint's name in the config (shown in the status bar).
        settings: its ``[endpoints.NAME]`` table.
    """

    def __init__(self, name: str, settings: EndpointSettings) -> None:
        self.name = name
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        self._model = settings.model
        self._info: ModelInfo | None = None
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        if not settings.verify:
            LOG.warning(self.insecure_warning)

    @property
    def insecure_warning(self) -> str:
        """What to tell the user when ``verify = false``, else ""."""
        if self.settings.verify:
            return ""
        return (f"endpoint {self.name}: TLS certificates are not checked (verify = false); anyone on "
                "the network path can read and change this chat")

    # -- protocol -----------------------------------------------------------------------------

    model_path = None
    can_shift = True  # the server keeps (or drops) its own cache; history is trimmed as before

    @property
    def fallback(self) -> str:
        return self.settings.fallback

    @property
    def n_ctx(self) -> int:
        return self.settings.n_ctx

    @property
    def loaded(self) -> bool:
        return self._info is not None

    def describe(self) -> ModelInfo:
        return self._info or ModelInfo(name=f"{self.name}: {self._model or '?'}", n_ctx=self.n_ctx)

    def load(self) -> ModelInfo:
        """Check the server answers and has the model (``GET /models``).

        Raises:
            ModelLoadError: unreachable, TLS failure, refused key, or the model is not served.
        """
        with self._lock:
            if self._info is not None:
                return self._info
            models = self.list_models()
            if not self._model:
                if not models:
                    raise ModelLoadError(f"endpoint {self.name} serves no models", title="Server error")
                self._model = models[0]
            elif models and self._model not in models:
                raise ModelLoadError(
                    f"endpoint {self.name} has no model {self._model!r}; it serves: {', '.join(models)}",
                    title="Server error",
                )
            self._info = ModelInfo(name=f"{self.name}: {self._model}", n_ctx=self.n_ctx,
                                   extra={"endpoint": self.name})
            return self._info

    def list_models(self) -> list[str]:
        """Model ids from ``GET /models``.

        Raises:
            ModelLoadError: as :meth:`load`.
        """
        try:
            response = self._http().get(f"{self.base_url}/models")
        except httpx.HTTPError as exc:
            raise ModelLoadError(self._describe_transport_error(exc), title="Server error") from None
        self._raise_for_status(response, ModelLoadError)
        try:
            return [str(item["id"]) for item in response.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ModelLoadError(f"endpoint {self.name}: /models did not return a model list",
                                 title="Server error") from None

    def count_tokens(self, messages: list[Message]) -> int:
        """An estimate (see :data:`CHARS_PER_TOKEN`)."""
        return sum(len(m["content"]) // CHARS_PER_TOKEN + TEMPLATE_TOKENS_PER_MESSAGE for m in messages)

    def stream(
        self, messages: list[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[TokenEvent]:
        """See :meth:`engine.chat.backend.ChatBackend.stream`.

        Raises:
            BackendError: the server refused the request, stalled longer than ``read_timeout``,
                dropped the connection, or sent a malformed chunk. Text already streamed has been
                yielded.
        """
        started = time.perf_counter()
        self.load()
        body = {
            "model": self._model, "messages": messages, "stream": True,
            "temperature": params.temperature, "top_p": params.top_p,
            "max_tokens": params.max_tokens, "stream_options": {"include_usage": True},
        }
        if params.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": params.json_schema, "strict": True}}
        event = TokenEvent(n_prompt_tokens=self.count_tokens(messages))
        finish = None
        watch: StreamWatch | None = None
        try:
            with connect_sse(self._http(), "POST", f"{self.base_url}/chat/completions", json=body) as source:
                self._raise_for_status(source.response, BackendError)
                with closed_on_cancel(cancel, source.response, self.settings.read_timeout) as watch:
                    for sse in source.iter_sse():
                        watch.alive()
                        if cancel.is_set():
                            break
                        if sse.data.strip() == "[DONE]":
                            finish = finish or "stop"
                            break
                        text, reason, usage = _read_chunk(self._parse(sse.data))
                        if usage:
                            event.n_prompt_tokens = usage.get("prompt_tokens", event.n_prompt_tokens)
                            event.n_prompt_evaluated = event.n_prompt_tokens
                        if reason:
                            finish = "length" if reason == "length" else "stop"
                        if text:
                            now = time.perf_counter() - started
                            if event.ttft_s is None:
                                event.ttft_s = now
                            event.n_generated += 1
                            event.elapsed_s = now
                            event.text = text
                            yield event.snapshot()
                            if event.n_generated >= params.max_tokens:  # the server may not stop
                                finish = "length"
                                break
        except SSEError:
            raise BackendError(f"endpoint {self.name} did not answer with an event stream") from None
        except (httpx.HTTPError, httpx.StreamClosed, OSError, ValueError) as exc:
            # Closing the response on cancel (or a stall) interrupts the read with one of these.
            if not cancel.is_set() and not (watch is not None and watch.stalled):
                if not isinstance(exc, httpx.HTTPError):
                    raise
                raise BackendError(self._describe_transport_error(exc, mid_stream=event.n_generated > 0)) from None
        if watch is not None and watch.stalled:  # only keep-alive comments, or nothing at all
            raise BackendError(f"endpoint {self.name} ({self.base_url}) stalled: nothing for "
                               f"{self.settings.read_timeout:g} s")
        if cancel.is_set():
            finish = "cancelled"
        if finish is None:  # neither [DONE] nor a finish_reason: the body just ended
            raise BackendError(f"endpoint {self.name} ({self.base_url}) dropped the connection "
                               "mid-reply: the stream ended before the reply did")
        event.text = ""
        event.elapsed_s = time.perf_counter() - started
        event.finish_reason = finish  # type: ignore[assignment]
        yield event

    def save_state(self, key: str, messages: list[Message]) -> int:
        """Nothing to save: the server keeps (or drops) its own cache."""
        return 0

    def restore_state(self, key: str, messages: list[Message]) -> int:
        """Nothing to restore: the server keeps (or drops) its own cache."""
        return 0

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- helpers ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            s = self.settings
            headers = {}
            if s.api_key_env and os.environ.get(s.api_key_env):
                headers["Authorization"] = f"Bearer {os.environ[s.api_key_env]}"
            self._client = httpx.Client(
                headers=headers, verify=s.verify,
                timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            )
        return self._client

    def _parse(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise BackendError(f"endpoint {self.name} sent a malformed chunk: {self._redact(data[:60])!r}") from None
        if not isinstance(chunk, dict):
            raise BackendError(f"endpoint {self.name} sent a malformed chunk: {self._redact(data[:60])!r}")
        if "error" in chunk:
            raise BackendError(f"endpoint {self.name} reported: {self._redact(_error_text(chunk))}")
        return chunk

    def _raise_for_status(self, response: httpx.Response, error: type) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            response.read()
            detail = _error_text(response.json())
        except (ValueError, httpx.HTTPError):
            detail = response.text[:120] if response.is_closed else ""
        detail = self._redact(detail)
        env = self.settings.api_key_env
        if status in (401, 403):
            key = (f"${env} is not set" if env and not os.environ.get(env) else
                   f"the key in ${env} was refused" if env else "no API key is configured (api_key_env)")
            raise error(f"endpoint {self.name} answered {status}: {key}", title="Not authorised")
        if status == 404:
            raise error(f"endpoint {self.name} answered 404 (unknown model {self._model!r} or wrong "
                        f"url {self.base_url}): {detail}", title="Server error")
        raise error(f"endpoint {self.name} answered {status}: {detail}".rstrip(": "), title="Server error")

    def _redact(self, text: str) -> str:
        """``text`` without the configured API key (a server may echo it in an error body)."""
        env = self.settings.api_key_env
        key = os.environ.get(env, "") if env else ""
        return text.replace(key, "<the API key>") if key else text

    def _describe_transport_error(self, exc: httpx.HTTPError, mid_stream: bool = False) -> str:
        where = f"endpoint {self.name} ({self.base_url})"
        if isinstance(exc, httpx.ConnectTimeout):
            return f"cannot reach {where}: no answer within {self.settings.connect_timeout:g} s"
        if isinstance(exc, httpx.ConnectError):
            text = str(exc)
            if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
                return f"TLS failure talking to {where}: {text} (verify = false skips the check, insecurely)"
            return f"cannot reach {where}: {text or 'connection refused'}"
        if isinstance(exc, httpx.ReadTimeout):
            return f"{where} stalled: nothing for {self.settings.read_timeout:g} s"
        if mid_stream or isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return f"{where} dropped the connection mid-reply: {exc or type(exc).__name__}"
        return f"{where}: {type(exc).__name__}: {exc}"


def _read_chunk(chunk: dict[str, Any]) -> tuple[str, str | None, dict | None]:
    """(text, finish_reason, usage) of one ``chat.completion.chunk``."""
    usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return "", None, usage
    delta = choices[0].get("delta") or {}
    text = delta.get("content") if isinstance(delta, dict) else None
    return (text if isinstance(text, str) else ""), choices[0].get("finish_reason"), usage


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:200]
        return str(error)[:200]
    return str(body)[:200]

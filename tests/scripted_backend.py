"""A backend that replays fixed text, token by token: for UI tests about rendering only
(snapshots, escape sequences on a real terminal). Every feature's end-to-end test runs the real
llama.cpp backend instead."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from engine.chat.backend import GenerationParams, Message, ModelInfo, TokenEvent


class ScriptedBackend:
    """Implements the whole :class:`engine.chat.backend.ChatBackend` protocol."""

    model_path = None
    fallback = ""
    insecure_warning = ""
    can_shift = True

    def __init__(self, reply: str, n_ctx: int = 2048) -> None:
        self.reply = reply
        self._n_ctx = n_ctx
        self.loaded = True

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def describe(self) -> ModelInfo:
        return ModelInfo(name="scripted", quantization="Q4_1", n_ctx=self._n_ctx)

    def load(self) -> ModelInfo:
        return self.describe()

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream(self, messages: list[Message], params: GenerationParams, cancel: threading.Event) -> Iterator[TokenEvent]:
        words = self.reply.split(" ")
        prompt = self.count_tokens(messages)
        for index, word in enumerate(words):
            if cancel.is_set():
                break
            yield TokenEvent(text=word + (" " if index < len(words) - 1 else ""), n_prompt_tokens=prompt,
                             n_prompt_evaluated=prompt, n_generated=index + 1, ttft_s=0.05,
                             elapsed_s=0.05 + 0.01 * index)
        yield TokenEvent(n_prompt_tokens=prompt, n_prompt_evaluated=prompt, n_generated=len(words),
                         ttft_s=0.05, elapsed_s=0.05 + 0.01 * len(words),
                         finish_reason="cancelled" if cancel.is_set() else "stop")

    def save_state(self, key: str, messages: list[Message]) -> int:
        return 0

    def restore_state(self, key: str, messages: list[Message]) -> int:
        return 0

    def close(self) -> None:
        pass

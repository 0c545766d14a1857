"""The in-process llama.cpp backend (llama-cpp-python).

Loads a GGUF, renders prompts with the chat template stored in its metadata, streams tokens with
a cooperative cancel between tokens, and keeps the KV cache across turns: each turn's prompt starts
with the previous turn's tokens, so llama-cpp-python's prefix match (``Llama.generate``) evaluates
only the new part. How many prompt tokens were really evaluated is read from llama.cpp's own
counters (``llama_perf_context``), not inferred.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from engine import cpu, logs
from engine.chat.backend import GenerationParams, Message, ModelInfo, TokenEvent
from engine.chat.kv_state import KVStateStore, model_identity
from engine.chat.stop_text import StopText
from engine.errors import BackendError, ContextOverflowError, ModelLoadError
from engine.models.gguf import check_gguf_file, file_type_name

LOG = logging.getLogger("hearth.engine")

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Used only when a GGUF carries no ``tokenizer.chat_template``."""

CHATML_MARKERS = ("<|im_end|>", "<|im_start|>")
"""Where a reply under :data:`CHATML_TEMPLATE` ends: a model without a template (a base model)
does not know these as special tokens and writes them out as text, again and again."""


MIN_SLIDE_TOKENS = 16
"""Fewer matching tokens than this are evaluated again rather than moved."""

MIN_STATE_TOKENS = 64
"""Contexts shorter than this are not saved: processing them again is faster than the file."""


def allow_shift_in(llama_cpp: Any, llm: Any) -> bool:
    """Whether llama.cpp can shift positions in this context's memory (RoPE models can; some
    memory types cannot): ``llama_memory_can_shift``."""
    return bool(llama_cpp.llama_memory_can_shift(llama_cpp.llama_get_memory(llm.ctx)))


def default_threads() -> int:
    """Physical cores (psutil), falling back to logical CPUs; token generation is memory-bound
    and hyper-threads slow it down."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


class LlamaBackend:
    """A GGUF model running in this process.

    Args:
        model_path: the GGUF file.
        n_ctx: context window, tokens.
        n_threads: generation threads; 0 for :func:`default_threads`.
        n_batch: prompt-processing batch, tokens.
        seed: sampling seed (4294967295: random).
        state_store: where chats' KV states are saved and restored; ``None``: never.
        fit_check: called with the GGUF path and ``n_ctx`` before loading; raises
            :class:`ModelLoadError` for a model that would not fit the machine's memory
            (:func:`engine.models.fit.check_fits`, handed in by :mod:`engine.chat.factory`).
            ``None``: no check.
        allow_shift: slide the KV cache when the session drops the oldest turns (where the
            model's memory can shift); ``False`` forces the drop-to-half fallback.
    """

    fallback = ""
    insecure_warning = ""

    def __init__(
        self, model_path: Path, n_ctx: int = 4096, n_threads: int = 0, n_batch: int = 512,
        seed: int = 0xFFFFFFFF, state_store: KVStateStore | None = None,
        fit_check: Callable[[Path, int], object] | None = None, allow_shift: bool = True,
    ) -> None:
        self.model_path = Path(model_path).expanduser()
        self._n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_batch = n_batch
        self.seed = seed
        self.state_store = state_store
        self.fit_check = fit_check
        self.allow_shift = allow_shift
        self._can_shift = False
        self._llm: Any = None
        self._formatter: Any = None
        self._vocab: Any = None
        self._last_prompt: tuple[tuple, list[int]] = ((), [])
        self._stop_texts: tuple[str, ...] = ()
        self._info: ModelInfo | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def describe(self) -> ModelInfo:
        """What is known before loading: the name from the file, the context size from config."""
        return self._info or ModelInfo(name=self.model_path.stem, n_ctx=self._n_ctx)

    def load(self) -> ModelInfo:
        """Load the model (once; concurrent callers wait for the first).

        Raises:
            ModelLoadError: missing file, not GGUF, too large for the memory budget, truncated or
                otherwise refused by llama.cpp.
        """
        with self._load_lock:
            if self._info is not None:
                return self._info
            check_gguf_file(self.model_path)
            if self.fit_check is not None:  # never an OOM kill: refuse with the figures instead
                self.fit_check(self.model_path, self._n_ctx)
            wrong_build = cpu.build_runs_here()
            if wrong_build:
                raise ModelLoadError(wrong_build)
            import llama_cpp  # heavy (the native library): loaded with the first model
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            if logs.route_llama_log(llama_cpp):  # the first load: say what this build uses
                machine, flags = cpu.this_machine()
                LOG.info(cpu.build_report(llama_cpp.llama_print_system_info().decode(), machine, flags))
            logs.first_native_error = ""
            LOG.info("loading %s (n_ctx=%d, threads=%d)", self.model_path, self._n_ctx, self.n_threads)
            started = time.perf_counter()
            try:
                # verbose=True keeps llama-cpp-python from redirecting fds 1 and 2; its Python
                # prints go to the log and its native log through logs.route_llama_log.
                with contextlib.redirect_stderr(logs.LogWriter()), contextlib.redirect_stdout(logs.LogWriter()):
                    llm = llama_cpp.Llama(
                        model_path=str(self.model_path), n_ctx=self._n_ctx,
                        n_threads=self.n_threads, n_threads_batch=self.n_threads,
                        n_batch=self.n_batch, seed=self.seed, verbose=True,
                    )
            except (ValueError, RuntimeError, OSError) as exc:
                detail = logs.first_native_error.split(": ")[-1] or str(exc)
                raise ModelLoadError(f"llama.cpp could not load {self.model_path.name}: {detail} "
                                     "(is the file corrupted or incomplete?)") from None
            template = llm.metadata.get("tokenizer.chat_template")
            notice = ""
            if not template:
                template, self._stop_texts = CHATML_TEMPLATE, CHATML_MARKERS
                notice = (f"{self.model_path.name} has no chat template: it looks like a base model, "
                          "not one tuned to chat, and will not answer well (hearth frames the chat "
                          "as ChatML for it); an -Instruct or -it model chats.")
                LOG.warning("%s", notice)
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(llm, eos),
                bos_token=self._token_text(llm, bos),
                stop_token_ids=[eos],
            )
            self._llm = llm
            self._can_shift = allow_shift_in(llama_cpp, llm) if self.allow_shift else False
            self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
            self._n_ctx = llm.n_ctx()
            self._info = ModelInfo(
                name=self.model_path.stem,
                quantization=file_type_name(llm.metadata.get("general.file_type")),
                n_ctx=self._n_ctx,
                extra={"path": str(self.model_path)},
                notice=notice,
            )
            LOG.info("loaded in %.2f s", time.perf_counter() - started)
            return self._info

    @staticmethod
    def _token_text(llm: Any, token: int) -> str:
        if token < 0:
            return ""
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _prompt_tokens(self, messages: list[Message]) -> list[int]:
        """Template-rendered, tokenized prompt. The last result is kept: the session counts the
        fitted prompt's tokens and then streams that same prompt, so it is tokenized once."""
        key = tuple((m["role"], m["content"]) for m in messages)
        if self._last_prompt[0] != key:
            result = self._formatter(messages=messages)
            tokens = self._llm.tokenize(
                result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
            )
            self._last_prompt = (key, tokens)
        return self._last_prompt[1]

    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt tokens of ``messages`` rendered by the model's chat template (loads the model)."""
        self.load()
        return len(self._prompt_tokens(messages))

    def stream(
        self, messages: list[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[TokenEvent]:
        """See :meth:`engine.chat.backend.ChatBackend.stream`."""
        started = time.perf_counter()
        self.load()
        import llama_cpp  # already loaded by load(): a dict lookup

        with self._run_lock, contextlib.redirect_stderr(logs.LogWriter()):
            llm = self._llm
            tokens = self._prompt_tokens(messages)
            room = self._n_ctx - len(tokens)
            if room <= 0:
                raise ContextOverflowError(
                    f"the prompt is {len(tokens)} tokens; the context window is {self._n_ctx}"
                )
            max_tokens = min(params.max_tokens, room)
            if self._can_shift:
                self._slide_cache(tokens)
            perf_before = self._perf_count(llama_cpp)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            event = TokenEvent(n_prompt_tokens=len(tokens))
            stop = StopText(self._stop_texts)
            grammar = None
            if params.grammar:
                from llama_cpp.llama_grammar import LlamaGrammar

                grammar = LlamaGrammar.from_string(params.grammar, verbose=False)
            generator = llm.generate(
                tokens, temp=params.temperature, top_p=params.top_p, top_k=40, min_p=0.05,
                repeat_penalty=1.0, reset=True, grammar=grammar,
            )
            finish = "length"
            try:
                while not cancel.is_set():
                    token = next(generator)
                    now = time.perf_counter() - started
                    if event.ttft_s is None:
                        event.ttft_s = now
                        event.n_prompt_evaluated = self._perf_count(llama_cpp) - perf_before
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        finish = "stop"
                        break
                    event.n_generated += 1
                    event.elapsed_s = now
                    event.text = stop.feed(decoder.decode(llm.detokenize([token])))
                    if stop.stopped:
                        finish = "stop"
                        if event.text:
                            yield event.snapshot()
                        break
                    yield event.snapshot()
                    if event.n_generated >= max_tokens:
                        break
                else:
                    finish = "cancelled"
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp failed while generating: {exc}") from None
            finally:
                generator.close()
            event.text = stop.feed(decoder.decode(b"", final=True)) + stop.flush()
            event.elapsed_s = time.perf_counter() - started
            event.finish_reason = finish  # type: ignore[assignment]
            yield event

    @property
    def can_shift(self) -> bool:
        """llama.cpp can move cached tokens to new positions in this model's memory
        (``llama_memory_can_shift``), and shifting was not turned off."""
        return self._can_shift

    def _slide_cache(self, tokens: list[int]) -> int:
        """When the oldest turns left the prompt (the session's window slid), remove their tokens
        from the KV cache and move the tokens after them back, so the cache holds a prefix of
        ``tokens`` again and only the new message is evaluated — llama.cpp's context shift
        (``llama_memory_seq_rm`` + ``llama_memory_seq_add``, as its own server does on overflow).

        The kept part is found where it now starts: after the common prefix (the system prompt),
        the cached position whose tokens match the most of the prompt's continuation. Returns
        the tokens moved (0: nothing to slide, or nothing worth it)."""
        import llama_cpp  # already loaded by load(): a dict lookup

        prefix = llama_cpp.Llama.longest_token_prefix
        llm = self._llm
        n = llm.n_tokens
        held = llm.input_ids[:n].tolist()
        start = prefix(held, tokens)
        if start >= n or start >= len(tokens):
            return 0
        best, best_len = 0, 0
        opening = tokens[start:start + MIN_SLIDE_TOKENS]  # cheap to compare at every position
        for at in range(start + 1, n - len(opening) + 1):
            if held[at:at + len(opening)] == opening:
                length = prefix(held[at:], tokens[start:])
                if length > best_len:
                    best, best_len = at, length
        if best_len < MIN_SLIDE_TOKENS:
            return 0
        gap = best - start
        ctx = llm._ctx  # llama-cpp-python's context wrapper: seq_rm / seq_add on sequence 0
        ctx.kv_cache_seq_rm(0, best + best_len, -1)  # whatever followed that no longer matches
        ctx.kv_cache_seq_rm(0, start, best)  # the turns that left the window
        ctx.kv_cache_seq_shift(0, best, best + best_len, -gap)  # the rest moves back
        llm.input_ids[start:start + best_len] = held[best:best + best_len]
        llm.n_tokens = start + best_len
        LOG.info("context shift: dropped %d cached tokens, moved %d back to position %d", gap, best_len, start)
        return best_len

    def _perf_count(self, llama_cpp: Any) -> int:
        """Tokens llama.cpp has decoded in this context so far (prompt batches + single tokens)."""
        data = llama_cpp.llama_perf_context(self._llm.ctx)
        return int(data.n_p_eval + data.n_eval)

    def save_state(self, key: str, messages: list[Message]) -> int:
        """Write the context state (KV cache and the tokens it holds) to the state store under
        ``key``, so a later :meth:`restore_state` skips processing those tokens again.

        Only the tokens that are a prefix of ``messages`` rendered by the chat template are kept
        (checked, so a context holding another chat is never saved under this key).

        Returns the number of tokens saved: 0 when there is no store, no model loaded, or fewer
        than :data:`MIN_STATE_TOKENS` matching tokens. Errors writing the file are logged, not
        raised (a state is an optimisation; losing one costs only prompt processing).
        """
        store = self.state_store
        if store is None or not store.enabled or self._llm is None:
            return 0
        import llama_cpp  # heavy (the native library): loaded with the first model

        with self._run_lock:
            llm = self._llm
            held = llm.input_ids[: llm.n_tokens].tolist()
            n = llama_cpp.Llama.longest_token_prefix(held, self._prompt_tokens(messages))
            if n < MIN_STATE_TOKENS:
                return 0
            llm._ctx.kv_cache_seq_rm(-1, n, -1)  # the tail is not part of this chat's prompt
            llm.n_tokens = n
            tokens = (llama_cpp.llama_token * n)(*held[:n])
            started = time.perf_counter()
            try:
                with store.saving(key, model_identity(self.model_path, self._n_ctx)) as tmp:
                    if not llama_cpp.llama_state_save_file(llm.ctx, str(tmp).encode(), tokens, ctypes.c_size_t(n)):
                        raise OSError(f"llama.cpp could not write {tmp}")
            except OSError as exc:
                LOG.warning("could not save the KV state of %s: %s", key, exc)
                return 0
            LOG.info("saved %d tokens of %s in %.3f s", n, key, time.perf_counter() - started)
            return n

    def restore_state(self, key: str, messages: list[Message]) -> int:
        """Load the saved state of ``key`` if it fits this model and ``messages``.

        The state store checks the model file, context size and the file's integrity; here the
        saved tokens are compared with ``messages`` rendered by the chat template, and only their
        common prefix is kept (the next reply processes the rest as usual). Loads the model.

        Returns the number of prompt tokens restored (0: nothing usable; the prompt will be
        processed normally).

        Raises:
            ModelLoadError: the model cannot be loaded.
        """
        store = self.state_store
        if store is None or not store.enabled:
            return 0
        self.load()
        import llama_cpp  # heavy (the native library): loaded with the first model

        with self._run_lock:
            path = store.find(key, model_identity(self.model_path, self._n_ctx))
            if path is None:
                return 0
            llm = self._llm
            expected = self._prompt_tokens(messages)
            started = time.perf_counter()
            buffer = (llama_cpp.llama_token * self._n_ctx)()
            count = ctypes.c_size_t(0)
            ok = llama_cpp.llama_state_load_file(
                llm.ctx, str(path).encode(), buffer, ctypes.c_size_t(self._n_ctx), ctypes.byref(count)
            )
            if not ok:
                llm.reset()
                llm._ctx.kv_cache_clear()
                store.discard(key, f"llama.cpp refused it ({logs.first_native_error or 'see log'})")
                return 0
            saved = buffer[: count.value]
            common = llama_cpp.Llama.longest_token_prefix(saved, expected)
            llm.input_ids[:common] = saved[:common]
            llm.n_tokens = common
            llm._requires_eval = True  # llama-cpp-python: logits must come from a fresh decode
            llm._ctx.kv_cache_seq_rm(-1, common, -1)
            LOG.info(
                "restored KV state %s: %d of %d saved tokens match the %d-token prompt (%.3f s)",
                key, common, len(saved), len(expected), time.perf_counter() - started,
            )
            return common

    def close(self) -> None:
        """Free the model. Waits for a reply that is still generating (set its cancel event first
        to make that wait at most one token): freeing the model under a running decode crashes
        llama.cpp."""
        with self._run_lock, self._load_lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
                self._info = None
                self._last_prompt = ((), [])

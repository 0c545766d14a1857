"""The one thread that does the chat backend's work in the TUI: loading a model, every reply, and
saving or restoring KV state.

llama.cpp's CPU backend is built with OpenMP (GGML_OPENMP, as in llama-cpp-python's wheels and
our own build), and libgomp keeps a team of worker threads for each thread that has run a parallel
region, for as long as that thread lives. Textual's thread workers run on the event loop's default
executor, which hands each job to whichever of its threads is idle, so the second reply often ran
on another thread than the first, and the process then held two teams. With more OpenMP threads
than CPUs, libgomp spins only briefly at a barrier before it sleeps (its "throttled" spin count:
GOMP_SPINCOUNT in the libgomp manual), and llama.cpp meets a barrier after every operation of
every layer: measured here (2 threads, SmolLM2 135M), replies from three long-lived threads in
turn ran at 66-78 tokens/s after a first at 100-120; from one thread, 101-126 throughout; in
hearth at turn 51 of a chat, the second and third replies ran at 52 tokens/s after a first at 81
(bench/smooth_stream.py, which now sends several replies to one TUI). One long-lived thread
keeps one team.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class EngineThread:
    """A single long-lived thread, named ``hearth-engine``, running one job at a time."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-engine")

    async def run(self, job: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``job(*args, **kwargs)`` on the engine thread, after the jobs before it, in the
        caller's context (Textual's active app and message pump), and return its result.

        Raises:
            Whatever ``job`` raises. Cancelling the awaiting task does not stop a job that has
            started (the job watches its own cancel event).
        """
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: context.run(job, *args, **kwargs))

    def close(self) -> None:
        """Take no more jobs; a job under way finishes on its own."""
        self._executor.shutdown(wait=False)

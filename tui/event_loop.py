"""The chat's event loop: uvloop's where it is installed (a dependency except on Windows, for
which it is not built), asyncio's own otherwise.

At a Pi-class token rate every token is its own update of the reply, so the UI thread wakes once
a token: the generation thread's ``call_soon_threadsafe`` writes to the loop's wake-up pipe, and
the loop returns from ``epoll_wait``, reads the pipe and runs the callback. asyncio does the
reading and the scheduling in Python, uvloop in C (libuv); the drawing is the same Python either
way. Measured in hearth under the Pi-class CPU quota (bench/smooth_stream.py's set-up, three
alternating pairs), the UI thread's CPU per update fell from 0.59 to 0.55 ms, lower in every pair.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new event loop, as ``asyncio.run`` does (the loop is closed after it):
    uvloop's when it can be imported, else asyncio's.

    Raises:
        Whatever ``main`` raises.
    """
    try:
        import uvloop
    except ImportError:
        log.info("uvloop is not installed: the chat runs on asyncio's own event loop")
        return asyncio.run(main)
    return uvloop.run(main)

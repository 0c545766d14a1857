"""Python's cyclic garbage collector kept from pausing a streaming reply.

A full (generation 2) collection walks every object the process tracks: at turn 51 of a chat
(the Textual widgets of the mounted messages, their line caches, the history) one took 55-70 ms of
the UI thread here, 180-230 ms of wall time under the Pi-class CPU quota, and was the longest gap
between updates of the reply (bench/smooth_stream.py; traced with ``gc.callbacks``). While a reply
streams, the objects that existed before it are moved out of the collector's sight
(``gc.freeze``): collections then look only at what the reply creates. When the reply ends they
are handed back (``gc.unfreeze``, into the oldest generation), so nothing is kept from collection
for longer than one reply. Both calls are O(1) (they splice the collector's lists).

The youngest generation is collected less often meanwhile (:data:`YOUNG_WHILE_STREAMING`).
"""

from __future__ import annotations

import gc

YOUNG_WHILE_STREAMING = 20_000
"""Container objects allocated (less those freed) between two collections of the youngest
generation while a reply streams (``gc.set_threshold``; Python's default: 700). A streamed reply
makes short-lived containers by the thousand a second (strips, segments, regions, messages), and
at 700 a collection ran every 30-40 ms on the UI thread, each from a cold cache (llama.cpp has the
cores): in the real app at full speed (traced with ``gc.callbacks``), 96.7 ms of the UI thread's
CPU went to collections over a start and four replies, 42-45 ms at 20,000 (the engine thread's
24 ms to 3-12), and the UI thread's CPU while streaming fell by 5 %. Most of those objects are
freed by their reference counts before a collection would look at them; cyclic garbage waits
longer, until the reply ends at the latest."""

_held: tuple[int, ...] | None = None
"""The collector's thresholds before :func:`hold_for_streaming`; None when not holding."""


def hold_for_streaming() -> None:
    """Keep the objects alive now out of collections, and collect the youngest generation every
    :data:`YOUNG_WHILE_STREAMING` allocations, until :func:`release_after_streaming`."""
    global _held
    gc.freeze()
    if _held is None:
        _held = gc.get_threshold()
        gc.set_threshold(YOUNG_WHILE_STREAMING, *_held[1:])


def release_after_streaming() -> None:
    """Hand the held objects back to the collector, and its thresholds (a no-op when none are
    held)."""
    global _held
    if _held is not None:
        gc.set_threshold(*_held)
        _held = None
    gc.unfreeze()

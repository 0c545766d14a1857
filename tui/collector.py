"""Python's cyclic garbage collector kept from pausing a streaming reply.

A full (generation 2) collection walks every object the process tracks: at turn 51 of a chat
(the Textual widgets of the mounted messages, their line caches, the history) one took 55-70 ms of
the UI thread here, 180-230 ms of wall time under the Pi-class CPU quota, and was the longest gap
between updates of the reply (bench/smooth_stream.py; traced with ``gc.callbacks``). While a reply
streams, the objects that existed before it are moved out of the collector's sight
(``gc.freeze``): collections then look only at what the reply creates, and the young
generations are still collected as usual. When the reply ends they are handed back
(``gc.unfreeze``, into the oldest generation), so nothing is kept from collection for longer
than one reply. Both calls are O(1) (they splice the collector's lists).
"""

from __future__ import annotations

import gc


def hold_for_streaming() -> None:
    """Keep the objects alive now out of collections until :func:`release_after_streaming`."""
    gc.freeze()


def release_after_streaming() -> None:
    """Hand the held objects back to the collector (a no-op when none are held)."""
    gc.unfreeze()

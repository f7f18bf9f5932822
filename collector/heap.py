"""The garbage collector's settings while a service polls.

Everything built at start-up (imported modules, the configuration, SQLAlchemy's and aiohttp's
machinery, per-target state) lives as long as the service, yet each full collection walked all of it
again; the records the writer holds until a flush are promoted into the oldest generation, so full
collections kept coming (56-88 ms each with 200 targets in `bench/poll.py`, 6 ms once frozen). A poll
also allocates a few dozen containers, so the youngest generation filled every couple of dozen polls;
a larger threshold collects it a tenth as often. Together: GC from ~0.06 ms to ~0.01 ms per poll.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNGEST_THRESHOLD = 10_000  # allocations between collections of the youngest generation (Python: 700)


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """While polling: start-up garbage collected once, what survives kept out of later collections
    (`gc.freeze`), the youngest generation collected less often. Enter it when the service is built.
    On leaving, the settings are back and the heap is collectable again (a process that runs the
    service more than once, a test suite, would otherwise never free the earlier runs' cycles)."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNGEST_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()

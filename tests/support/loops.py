"""The consume loop run in-process on a thread, stopped (drained) on the way out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fleetpipe.core.loop import ConsumeProduceLoop


@contextmanager
def running_loop(loop: ConsumeProduceLoop) -> Iterator[ConsumeProduceLoop]:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the loop must drain and stop"

"""The Python process a service runs in: its garbage collector.

Why: a stage allocates a few short-lived objects per event (a decoded message, a record, a
tuple or two) and keeps a few long-lived ones per vehicle. With Python's default young
threshold (700) the collector runs many times per batch, and each run promotes what the batch
still holds, so the older generations fill with objects that die a moment later and are
scanned again with the whole heap: per-vehicle state, settings, the registry. Collecting
rarely and freezing what start-up built (it lives as long as the process) keeps that work in
proportion to what a batch really leaves behind.
"""

from __future__ import annotations

import gc
import logging

from fleetpipe.core.settings import RuntimeSettings

log = logging.getLogger(__name__)


def tune_gc(settings: RuntimeSettings) -> None:
    """Apply ``settings.gc_threshold`` to the collector, once start-up is done.

    Start-up's heap (modules, settings, registries, clients) is collected once and then frozen:
    it stays out of every later collection. The older generations keep Python's ratios (10).
    0 leaves the collector as Python set it. Every service process calls it once, last before
    it serves (``run_loop_service`` does for the loop services; a service with its own ``main``
    calls it there).
    """
    if settings.gc_threshold == 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(settings.gc_threshold, older, oldest)
    log.info(
        "garbage collector: young threshold %d, %d start-up objects frozen",
        settings.gc_threshold,
        gc.get_freeze_count(),
    )

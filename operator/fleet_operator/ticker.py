"""The periodic reconcile of every pipeline (drift and lag), without a finalizer.

kopf's own ``@kopf.timer`` adds a finalizer to every object it runs on (it is hard-wired in
kopf), so a pipeline whose deletion has nothing to do would still wait for the operator to let
it go, and stay Terminating forever once the operator is gone (``helm uninstall``). This ticker
does the same job from the outside: the watch tells it which pipelines exist, and every
``interval_s`` it hands each one to ``tick`` in a small pool of threads. A tick still running
when the next one is due is skipped rather than queued, as kopf's ``sharp=False`` timer did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from fleet_operator.ports import PipelineRef

log = logging.getLogger(__name__)


class Ticker:
    def __init__(
        self, tick: Callable[[PipelineRef], None], *, interval_s: float, workers: int = 4
    ) -> None:
        self._tick = tick
        self._interval = interval_s
        self._workers = workers
        self._known: dict[str, PipelineRef] = {}
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def track(self, ref: PipelineRef) -> None:
        with self._lock:
            self._known[ref.uid] = ref

    def forget(self, uid: str) -> None:
        with self._lock:
            self._known.pop(uid, None)

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="tick")
        self._thread = threading.Thread(target=self._loop, name="ticker", daemon=True)
        self._thread.start()

    def stop(self, *, timeout_s: float) -> None:
        """No new ticks; wait up to ``timeout_s`` for those running to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                running = list(self._running.values())
            # _run never raises: a tick's failure is logged there.
            wait(running, timeout=timeout_s)

    def _loop(self) -> None:
        # The first tick one interval after start, as a timer's initial delay: the change
        # handlers reconcile every pipeline as the operator starts.
        while not self._stop.wait(self._interval):
            with self._lock:
                due = [
                    ref
                    for uid, ref in self._known.items()
                    if uid not in self._running or self._running[uid].done()
                ]
                assert self._pool is not None
                for ref in due:
                    self._running[ref.uid] = self._pool.submit(self._run, ref)
                for uid in [u for u in self._running if u not in self._known]:
                    if self._running[uid].done():
                        del self._running[uid]

    def _run(self, ref: PipelineRef) -> None:
        try:
            self._tick(ref)
        except Exception:
            # One pipeline's failure never stops the others' ticks; the next tick retries.
            log.exception("%s/%s: periodic reconcile failed", ref.namespace, ref.name)

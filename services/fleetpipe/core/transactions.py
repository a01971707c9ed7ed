"""Blocking Kafka calls with a bound, and the recovery each failure of one calls for.

librdkafka sorts every error of a transactional call into three kinds, each with one
documented recovery (see ``rdkafka.h``, "Transactional producer API"):

* *retriable* (a timeout, a coordinator loading or moving): call again, with the same
  arguments — ``commit_transaction`` and ``abort_transaction`` resume where they were;
* *abortable* (``txn_requires_abort``: a write failed, the consumer group rebalanced under
  the transaction): abort the transaction and process its input again from the committed
  offsets;
* *fatal* (fenced, or any error with neither flag): the producer can never be used again;
  a new one with the same ``transactional.id`` calls ``init_transactions``, which fences the
  old one and aborts whatever it left open.

A timeout passed to librdkafka is not always honoured: ``send_offsets_to_transaction`` waits
for the group coordinator without a deadline when it is down (confluentinc/librdkafka#5456),
which left a stage stuck for good after a broker restart. So every call runs on a worker
thread, and the loop waits for it at most twice the timeout it passed; a call still running
then is a wedged client, recovered as a fatal one. The stuck thread is a daemon and is left
behind with the client it is stuck in.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

import confluent_kafka

log = logging.getLogger(__name__)

T = TypeVar("T")


class Recovery(Enum):
    RETRY = "retry"
    ABORT = "abort"
    RECREATE = "recreate"


def recovery_for(err: confluent_kafka.KafkaError) -> Recovery:
    """What librdkafka documents as the way out of ``err``, raised by a transactional call."""
    if err.fatal():
        return Recovery.RECREATE
    if err.txn_requires_abort():
        return Recovery.ABORT
    if err.retriable():
        return Recovery.RETRY
    # "The general recommendation is to treat these errors, that have neither the retriable
    # or abortable flags set, as fatal."
    return Recovery.RECREATE


class KafkaCallStalled(Exception):
    """A client call did not complete within its bound: it never returned, whatever timeout
    it was given, or it kept failing with retriable errors for as long as it may."""

    def __init__(self, what: str, waited_s: float) -> None:
        super().__init__(f"{what} did not complete within {waited_s:.1f}s")
        self.what = what
        self.waited_s = waited_s


class _Job(Generic[T]):
    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # handed to the waiting thread as it is
            self.error = exc
        finally:
            self.done.set()


class BoundedCalls:
    """Runs blocking client calls one at a time on a worker thread, each with a bound.

    ``call(what, fn)`` passes ``fn`` the timeout to give librdkafka and waits for it at most
    twice that. The worker starts on the first call, not in ``__init__``.
    """

    def __init__(self, name: str, *, timeout_s: float) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._jobs: queue.SimpleQueue[_Job[object] | None] | None = None

    def call(self, what: str, fn: Callable[[float], T]) -> T:
        timeout = self.timeout_s
        job: _Job[T] = _Job(lambda: fn(timeout))
        jobs = self._jobs if self._jobs is not None else self._start()
        jobs.put(job)  # type: ignore[arg-type]
        bound = 2 * timeout
        if not job.done.wait(bound):
            # The worker is stuck inside the client: the next call gets a fresh worker, and
            # this one ends whenever (if ever) the client lets go.
            self._jobs = None
            jobs.put(None)
            raise KafkaCallStalled(what, bound)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def close(self) -> None:
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None

    def _start(self) -> queue.SimpleQueue[_Job[object] | None]:
        jobs: queue.SimpleQueue[_Job[object] | None] = queue.SimpleQueue()
        # A daemon: a worker stuck in librdkafka must never keep the process from exiting.
        threading.Thread(target=_serve, args=(jobs,), name=self.name, daemon=True).start()
        self._jobs = jobs
        return jobs


def _serve(jobs: queue.SimpleQueue[_Job[object] | None]) -> None:
    while (job := jobs.get()) is not None:
        job.run()

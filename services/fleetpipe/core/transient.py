"""Kafka's "not yet" answers, and the retry of a Kafka call while it gets them (or while what it
answers is not there yet)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import confluent_kafka
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from fleetpipe.core.errors import KafkaError

log = logging.getLogger(__name__)

T = TypeVar("T")


# Answers that mean "not yet" rather than "no": a partition's leader or a group's coordinator
# moving, or not yet elected (a topic just created or grown, a broker restarting). librdkafka
# flags most errors it would retry, but the per-partition errors in an admin request's results
# (list_offsets) carry no flag, so these codes are named. A missing topic is not among them:
# a caller that expects one to appear bounds its own wait (``readers``).
TRANSIENT_CODES = frozenset(
    {
        confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION,
        confluent_kafka.KafkaError.LEADER_NOT_AVAILABLE,
        confluent_kafka.KafkaError.NOT_COORDINATOR,
        confluent_kafka.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        confluent_kafka.KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


def transient(exc: BaseException) -> bool:
    """Whether a Kafka exception is worth asking again (see ``TRANSIENT_CODES``)."""
    if not isinstance(exc, confluent_kafka.KafkaException):
        return False
    err = exc.args[0] if exc.args else None
    if not isinstance(err, confluent_kafka.KafkaError):
        return False
    return err.code() in TRANSIENT_CODES or bool(err.retriable())


def retry_kafka(call: Callable[[], Any], what: str, attempts: int = 10) -> Any:
    """``call`` again while it fails transiently (backing off 0.5 s doubling to 10 s, about a
    minute in all); then, or on any other failure, :class:`KafkaError` naming ``what``."""
    retrying = Retrying(
        retry=retry_if_exception(transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=10),
        before_sleep=lambda state: log.warning(
            "%s failed (%s), retrying", what, state.outcome.exception() if state.outcome else "?"
        ),
        reraise=True,
    )
    try:
        return retrying(call)
    except confluent_kafka.KafkaException as exc:
        raise KafkaError(f"{what} failed: {exc.args[0] if exc.args else exc}") from exc


def poll_until(call: Callable[[], T], done: Callable[[T], bool], *, within_s: float) -> T:
    """``call`` again, backing off from 0.05 s to 1 s, until ``done`` holds of what it returned
    or ``within_s`` has passed; what it returned last either way, for the caller to judge.

    For answers that trail a change the cluster has already made (a broker's metadata after a
    topic is created). An exception ``call`` raises is not retried: it propagates."""
    retrying = Retrying(
        retry=retry_if_result(lambda answer: not done(answer)),
        stop=stop_after_delay(within_s),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry_error_callback=_last_answer,
    )
    answer: T = retrying(call)
    return answer


def _last_answer(state: RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()

"""Bounded Kafka calls and the recovery librdkafka documents for each kind of failure."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from fleetpipe.core.transactions import BoundedCalls, KafkaCallStalled, Recovery, recovery_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "recovery"),
    [
        pytest.param(
            KafkaError(KafkaError._TIMED_OUT, retriable=True), Recovery.RETRY, id="timeout"
        ),
        pytest.param(
            KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, retriable=True),
            Recovery.RETRY,
            id="coordinator-loading",
        ),
        pytest.param(
            KafkaError(KafkaError.ILLEGAL_GENERATION, txn_requires_abort=True),
            Recovery.ABORT,
            id="rebalanced-under-the-transaction",
        ),
        pytest.param(
            KafkaError(KafkaError._TIMED_OUT, retriable=True, txn_requires_abort=True),
            Recovery.ABORT,
            id="abortable-wins-over-retriable",
        ),
        pytest.param(KafkaError(KafkaError._FENCED, fatal=True), Recovery.RECREATE, id="fenced"),
        pytest.param(
            KafkaError(KafkaError.INVALID_PRODUCER_EPOCH, fatal=True, retriable=True),
            Recovery.RECREATE,
            id="fatal-wins-over-everything",
        ),
        pytest.param(
            KafkaError(KafkaError._STATE), Recovery.RECREATE, id="no-flag-counts-as-fatal"
        ),
    ],
)
def test_each_error_gets_the_recovery_librdkafka_documents(
    error: KafkaError, recovery: Recovery
) -> None:
    assert recovery_for(error) is recovery


def test_a_call_gets_the_timeout_and_its_result_comes_back() -> None:
    calls = BoundedCalls("test-calls", timeout_s=0.5)
    try:
        assert calls.call("double", lambda t: 2 * t) == 1.0
    finally:
        calls.close()


def test_a_call_that_fails_raises_its_own_error() -> None:
    calls = BoundedCalls("test-calls", timeout_s=0.5)

    def fail(_timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, retriable=True))

    try:
        with pytest.raises(KafkaException) as raised:
            calls.call("commit_transaction", fail)
        assert raised.value.args[0].retriable()
    finally:
        calls.close()


def test_a_call_that_ignores_its_timeout_is_given_up_and_the_next_runs_on_a_new_worker() -> None:
    calls = BoundedCalls("test-calls", timeout_s=0.1)
    release = threading.Event()
    try:
        started = time.monotonic()
        with pytest.raises(KafkaCallStalled, match="send_offsets_to_transaction"):
            calls.call("send_offsets_to_transaction", lambda _t: release.wait(30))
        assert time.monotonic() - started < 5, "given up at twice the timeout, not at 30 s"
        assert calls.call("init_transactions", lambda _t: threading.current_thread().name)
    finally:
        release.set()
        calls.close()

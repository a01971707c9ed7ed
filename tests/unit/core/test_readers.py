"""The topic reader's offsets: a partition a restarting broker does not serve yet is asked again
within the bound; any other refusal is an error at once."""

from __future__ import annotations

import confluent_kafka
import pytest

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.readers import TopicReader

pytestmark = pytest.mark.unit


class _Client:
    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.calls = 0

    def get_watermark_offsets(self, _tp: object, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self.failures:
            raise confluent_kafka.KafkaException(confluent_kafka.KafkaError(self.failures.pop(0)))
        return (3, 17)


def _reader(client: _Client) -> TopicReader:
    reader = TopicReader({})
    reader._client = client  # type: ignore[assignment]
    return reader


@pytest.mark.parametrize(
    "code",
    [
        confluent_kafka.KafkaError._UNKNOWN_PARTITION,
        confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
        confluent_kafka.KafkaError.LEADER_NOT_AVAILABLE,
        confluent_kafka.KafkaError._TRANSPORT,
    ],
)
def test_a_partition_not_served_yet_is_asked_again(code: int) -> None:
    client = _Client([code, code])
    assert _reader(client).watermarks("changelog", 3, timeout_s=10) == (3, 17)
    assert client.calls == 3


def test_any_other_refusal_is_an_error_naming_the_partition_at_once() -> None:
    client = _Client([confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaError, match=r"changelog\[3\]"):
        _reader(client).watermarks("changelog", 3, timeout_s=10)
    assert client.calls == 1

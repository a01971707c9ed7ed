from __future__ import annotations

import pytest

from fleetpipe.core.kafka import PARTITIONER, producer_config
from fleetpipe.core.partitioner import murmur2, partition_for
from fleetpipe.core.settings import KafkaSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("key", "signed"),
    [
        # The vectors of Kafka's own UtilsTest.testMurmur2.
        pytest.param(b"21", -973932308, id="21"),
        pytest.param(b"foobar", -790332482, id="foobar"),
        pytest.param(b"a-little-bit-long-string", -985981536, id="long"),
        pytest.param(b"a-little-bit-longer-string", -1486304829, id="longer"),
        pytest.param(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, id="random"),
        pytest.param(b"abc", 479470107, id="abc"),
    ],
)
def test_murmur2_matches_the_java_client(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


def test_partition_for_is_positive_modulo_and_accepts_str() -> None:
    assert partition_for("21", 10) == (-973932308 & 0x7FFFFFFF) % 10
    assert partition_for(b"21", 10) == partition_for("21", 10)
    assert all(0 <= partition_for(f"v-{i}", 7) < 7 for i in range(500))
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for("x", 0)


def test_every_producer_uses_the_murmur2_partitioner() -> None:
    conf = producer_config(KafkaSettings(), client_id="x", transactional_id="t")
    assert conf["partitioner"] == PARTITIONER == "murmur2_random"

"""Helpers for tests and benchmarks that drive real services against real Kafka.

Importable by anyone (like ``kopf.testing``); nothing here runs at import time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from fleetpipe.core.errors import GroupOffsetsUnavailable
from fleetpipe.core.kafka import Admin, Headers, Message, build_admin, build_producer
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.lag import commit_offsets, group_lag
from fleetpipe.core.lag import end_offsets as topic_end_offsets
from fleetpipe.core.packs import PACK_HEADERS, Event, event_field, events_of
from fleetpipe.core.readers import OFFSET_BEGINNING, build_reader, is_partition_eof
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.kafka_security import kafka_env

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | Literal[False] | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy; raise TimeoutError naming ``what``.

    ``check`` may answer ``None`` or ``False`` for "not yet": what is returned is the first
    truthy answer, typed without them.
    """
    deadline = time.monotonic() + timeout
    last: T | Literal[False] | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def produce_all(
    kafka: KafkaSettings,
    topic: str,
    items: Iterable[tuple[bytes | str | None, bytes | None]],
    *,
    headers: Headers | None = None,
    headers_at: Mapping[int, Headers] | None = None,
    partitions: int | None = None,
) -> int:
    """Produce every (key, value) with ``headers``, or ``headers_at[i]`` for the i-th item.

    Keyed records go where the pipeline's producers put them: the key's partition by the key
    groups (fleetpipe.core.keygroups) of a topic of ``partitions`` partitions — by default, as
    many as the topic has now; a smaller number plays a producer that has not yet noticed that
    the topic grew."""
    producer = build_producer(kafka, client_id="fleetpipe-testing", overrides={"linger.ms": 20})
    groups = KeyGroups(kafka.key_groups)
    count = partitions if partitions is not None else producer.partitions(topic)
    n = 0
    for key, value in items:
        these = headers_at.get(n, headers) if headers_at else headers
        partition = None if key is None else groups.partition(key, count)
        producer.produce(topic, value, key, these, partition)
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    return n


def produce_packed(
    kafka: KafkaSettings,
    topic: str,
    items: Iterable[tuple[str, bytes]],
    *,
    events_per_pack: int = 500,
) -> int:
    """Produce (vehicle id, event) pairs as packs, the way ingest writes the raw topic: each
    partition's events (by the key groups) in order, ``events_per_pack`` to a record. Returns
    the number of records (packs) produced."""
    producer = build_producer(kafka, client_id="fleetpipe-testing", overrides={"linger.ms": 20})
    groups = KeyGroups(kafka.key_groups)
    count = producer.partitions(topic)
    open_packs: dict[int, list[bytes]] = {}
    records = 0

    def close(partition: int) -> None:
        nonlocal records
        producer.produce(topic, b"".join(open_packs.pop(partition)), None, PACK_HEADERS, partition)
        records += 1
        if records % 100 == 0:
            producer.poll(0)

    for vehicle, value in items:
        parts = open_packs.setdefault(groups.partition(vehicle, count), [])
        parts.append(event_field(value))
        if len(parts) >= events_per_pack:
            close(groups.partition(vehicle, count))
    for partition in list(open_packs):
        close(partition)
    producer.flush(60)
    return records


def produce_packs(
    kafka: KafkaSettings, topic: str, packs: Iterable[tuple[int, Sequence[bytes]]]
) -> int:
    """Produce each (partition, events) as one pack record on that partition, in the order
    given: packs as a recording kept them, boundaries and all. Returns the number of packs."""
    producer = build_producer(kafka, client_id="fleetpipe-testing", overrides={"linger.ms": 20})
    records = 0
    for partition, events in packs:
        value = b"".join(event_field(e) for e in events)
        producer.produce(topic, value, None, PACK_HEADERS, partition)
        records += 1
        if records % 100 == 0:
            producer.poll(0)
    producer.flush(60)
    return records


def end_offsets(
    kafka: KafkaSettings, topic: str, *, read_committed: bool = False
) -> dict[int, int]:
    """High watermarks per partition; with ``read_committed``, the last stable offsets.

    The two differ exactly where a transaction is open: records written but not yet committed.
    """
    return topic_end_offsets(build_admin(kafka, timeout_s=10), topic, read_committed=read_committed)


def transaction_open(admin: Admin, topic: str) -> bool:
    """Records on ``topic`` beyond its last stable offset: a batch is in flight.

    The stable offsets are read first, then the high watermarks, through one admin client: a
    commit landing between the two reads still counts (the high watermark only grows), where
    the other order would miss every batch that commits while a loaded machine takes its time
    over the second read. Once the writer is dead nothing moves, and the answer is exact.
    The caller's ``admin``: a drill polling this uses one client for all its looks, not one a
    look.
    """
    stable = topic_end_offsets(admin, topic, read_committed=True)
    high = topic_end_offsets(admin, topic)
    return any(high[p] > stable[p] for p in high)


def read_all(
    kafka: KafkaSettings,
    topic: str,
    *,
    read_committed: bool = True,
    idle_s: float = 2.0,
    timeout: float = 60.0,
) -> list[Message]:
    """Every record of a topic from the beginning.

    Reads every partition to its end (the last stable offset with ``read_committed``), then keeps
    reading until ``idle_s`` passes without a new record. The partitions are assigned directly
    rather than through a consumer group: a group join can take longer than ``idle_s`` on a busy
    machine, and a reader that counted it as idle time would return nothing.
    """
    reader = build_reader(
        kafka,
        client_id="fleetpipe-testing",
        group_id="fleetpipe-reader",
        read_committed=read_committed,
        partition_eof=True,
    )
    out: list[Message] = []
    try:
        partitions = reader.partitions(topic)
        if not partitions:
            return out
        reader.assign(topic, dict.fromkeys(partitions, OFFSET_BEGINNING))
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            for msg in reader.consume(5000, 0.2):
                if msg.error() is None:
                    out.append(msg)
                    at_end.discard(msg.partition())
                    quiet_since = time.monotonic()
                elif is_partition_eof(msg):
                    at_end.add(msg.partition())  # type: ignore[arg-type]
            if len(at_end) == len(partitions) and time.monotonic() - quiet_since >= idle_s:
                break
    finally:
        reader.close()
    return out


def read_events(
    kafka: KafkaSettings,
    topic: str,
    *,
    read_committed: bool = True,
    idle_s: float = 2.0,
    timeout: float = 60.0,
) -> list[Event]:
    """Every event of a topic from the beginning: each event of a pack, and single records."""
    return [
        event
        for msg in read_all(
            kafka, topic, read_committed=read_committed, idle_s=idle_s, timeout=timeout
        )
        for event in events_of(msg)
    ]


def committed_total(kafka: KafkaSettings, group_id: str, topic: str) -> int:
    """Sum of a group's committed offsets over a topic's partitions (0 where none)."""
    try:
        lags = group_lag(build_admin(kafka, timeout_s=10), group_id, [topic])
    except GroupOffsetsUnavailable:
        return 0  # the group coordinator is (re)loading: nothing readable yet
    return sum(p.committed or 0 for p in lags)


def commit_to_end(kafka: KafkaSettings, group_id: str, topic: str) -> int:
    """Point an idle group at the end of a topic (it skips older records); returns the total."""
    admin = build_admin(kafka, timeout_s=10)
    ends = topic_end_offsets(admin, topic)
    commit_offsets(admin, group_id, topic, ends)
    return sum(ends.values())


def service_env(
    kafka: KafkaSettings,
    topics: Topics,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {
        # The listener and, on a secure one, the login (kafka_security.py).
        **kafka_env(kafka),
        "FLEET_OBSERVABILITY__HTTP_HOST": "127.0.0.1",
        "FLEET_OBSERVABILITY__HTTP_PORT": "0",
        "FLEET_OBSERVABILITY__LOG_FORMAT": "text",
    }
    for name, value in topics.model_dump().items():
        env[f"FLEET_TOPICS__{name.upper()}"] = value
    env.update(extra or {})
    return env


@dataclass
class ServiceProcess:
    """A service run as a child process, the way Kubernetes runs it, so it can be SIGKILLed."""

    module: str
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    _log_start: int = 0

    def start(self) -> ServiceProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # A log file may be shared by successive runs: read only what this run writes.
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise with the tail of the service's log when it has exited."""
        if not self.alive():
            tail = "\n".join(self.log().splitlines()[-30:])
            raise AssertionError(
                f"{self.module} exited ({self.proc and self.proc.returncode}):\n{tail}"
            )

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no goodbye — a crash."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the graceful drain; returns the exit code."""
        assert self.proc is not None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def log(self) -> str:
        if not self.log_file.exists():
            return ""
        with self.log_file.open("rb") as f:
            f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far, its librdkafka threads included."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def http_port(self) -> int | None:
        """The health port the service logged at start (it binds port 0 in tests)."""
        found = re.search(r"health and metrics on [\w.]+:(\d+)", self.log())
        return int(found.group(1)) if found else None

    def get(self, path: str) -> tuple[int, str]:
        port = self.http_port()
        if port is None:
            return 0, ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200


def start_passthrough(
    kafka: KafkaSettings,
    topics: Topics,
    log_file: Path,
    *,
    group: str,
    mode: str = "exactly-once",
    extra: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """The core loop's passthrough (``python -m fleetpipe.passthrough``) from the raw topic to
    the enriched one in consumer group ``group``, started as a child process; ``extra``
    adds or overrides FLEET_* settings."""
    env = service_env(
        kafka,
        topics,
        {
            "FLEET_INPUT_TOPIC": topics.raw,
            "FLEET_OUTPUT_TOPIC": topics.enriched,
            "FLEET_GROUP_ID": group,
            "FLEET_MODE": mode,
            **(extra or {}),
        },
    )
    return ServiceProcess("fleetpipe.passthrough", env, log_file).start()


def wait_committed(
    workers: Iterable[ServiceProcess],
    kafka: KafkaSettings,
    group: str,
    topic: str,
    records: int,
    *,
    timeout: float = 120.0,
) -> None:
    """Wait until ``group`` has committed ``records`` Kafka records of ``topic``, while every
    worker stays alive (a crashed one fails the wait with its log)."""
    alive = list(workers)

    def done() -> bool:
        for worker in alive:
            worker.check_alive()
        return committed_total(kafka, group, topic) >= records

    wait_for(done, timeout=timeout, what=f"{group} to commit {records} records of {topic}")


def unique_name(prefix: str) -> str:
    return f"{prefix}{os.getpid():x}{time.monotonic_ns() % 10**10:x}"

"""Consumer lag and topic ends of a pipeline in the local cluster, read from the host.

The dev Kafka advertises itself by its Service's cluster name (``fleetpipe-kafka.fleetpipe.svc``),
which only the pods' resolver knows. The probe is therefore a process of its own: inside the
cluster's network namespace (where Service addresses route) and in a private mount namespace
whose ``/etc/hosts`` names each broker's Service address, so the host's files and resolver stay
untouched. It stays up for the whole run and answers one JSON line per line it reads: the
admin client's committed-vs-end offsets of each group (``fleetpipe.core.lag``, the operator's
reader) and the summed end offsets of each topic.

Run as ``python -m fleetpipe_dev.cluster.lagprobe --bootstrap B --group G=T1,T2 ...``.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated

import typer

from fleetpipe_dev.cluster.node import LocalCluster

# How long one answer may take before the probe is given up (and started again next time).
ANSWER_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Offsets:
    lag: dict[str, int]  # group → records behind on its input topics
    ends: dict[str, int]  # topic → its partitions' end offsets, summed


class LagProbe:
    """The probe process, started on first use; :meth:`read` is None while it cannot answer."""

    def __init__(
        self,
        cluster: LocalCluster,
        *,
        bootstrap: str,
        groups: Mapping[str, Sequence[str]],
        hosts: Mapping[str, str],
    ) -> None:
        self.cluster = cluster
        self.bootstrap = bootstrap
        self.groups = {g: list(t) for g, t in groups.items()}
        self.hosts = dict(hosts)
        self.proc: subprocess.Popen[str] | None = None
        self.log: IO[str] | None = None
        self.last_error = ""

    def _start(self) -> subprocess.Popen[str]:
        hosts_file = self.cluster.home / "lagprobe-hosts"
        lines = [Path("/etc/hosts").read_text().rstrip("\n")]
        lines += [f"{ip} {name}" for name, ip in sorted(self.hosts.items())]
        hosts_file.write_text("\n".join(lines) + "\n")
        args = ["--bootstrap", self.bootstrap]
        for group, topics in self.groups.items():
            args += ["--group", f"{group}={','.join(topics)}"]
        # unshare's new mount namespace is private: the bind mount stays in it.
        cmd = self.cluster.ns(
            "unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
            str(hosts_file), sys.executable, "-m", "fleetpipe_dev.cluster.lagprobe", *args,
        )  # fmt: skip
        self.log = self.cluster.log_file("lagprobe").open("a")
        return subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )

    def read(self) -> Offsets | None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write("read\n")
            proc.stdin.flush()
        except BrokenPipeError:
            self.last_error = "the probe exited"
            self.close()
            return None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(ANSWER_TIMEOUT_S):
                self.last_error = f"no answer within {ANSWER_TIMEOUT_S:.0f}s"
                self.close()
                return None
        line = proc.stdout.readline()
        if not line:
            self.last_error = "the probe exited"
            self.close()
            return None
        answer = json.loads(line)
        if "error" in answer:
            self.last_error = str(answer["error"])
            return None
        return Offsets(lag=answer["lag"], ends=answer["ends"])

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if self.log is not None:
            self.log.close()
            self.log = None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(bootstrap: str, groups: dict[str, list[str]]) -> None:
    # Imported here: the host side of this module needs no Kafka client.
    from fleetpipe.core.errors import KafkaError
    from fleetpipe.core.kafka import build_admin
    from fleetpipe.core.lag import group_lag
    from fleetpipe.core.settings import KafkaSettings

    admin = build_admin(KafkaSettings(bootstrap_servers=bootstrap), timeout_s=10.0)
    for _ in sys.stdin:
        try:
            lag: dict[str, int] = {}
            ends: dict[str, int] = {}
            for group, topics in groups.items():
                parts = group_lag(admin, group, topics)
                lag[group] = sum(p.lag for p in parts)
                for p in parts:
                    ends[p.topic] = ends.get(p.topic, 0) + p.end
            answer: dict[str, object] = {"lag": lag, "ends": ends}
        except KafkaError as exc:
            answer = {"error": str(exc)}
        print(json.dumps(answer), flush=True)


def main(
    bootstrap: Annotated[str, typer.Option(help="the brokers")],
    group: Annotated[list[str], typer.Option(help="GROUP=TOPIC[,TOPIC...], once per group")],
) -> None:
    groups: dict[str, list[str]] = {}
    for item in group:
        name, _, topics = item.partition("=")
        if not name or not topics:
            raise typer.BadParameter(f"{item!r}: want GROUP=TOPIC[,TOPIC...]", param_hint="--group")
        groups[name] = topics.split(",")
    _serve(bootstrap, groups)


if __name__ == "__main__":
    typer.run(main)

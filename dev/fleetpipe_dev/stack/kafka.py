"""A single-node KRaft Kafka broker from Maven Central's jars."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from fleetpipe.core.settings import KafkaSettings
from fleetpipe_dev.stack.kafka_security import BrokerSecurity
from fleetpipe_dev.stack.procs import StartError, port_open
from fleetpipe_dev.stack.server import LocalServer

KAFKA_VERSION = "4.3.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.fleetpipe.dev</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <!-- The broker logs through SLF4J 1.x and configures log4j2 at run time: the backend
         the release ships in its own tarball. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


def default_cache() -> Path:
    return Path(os.environ.get("FLEETPIPE_CACHE", Path.home() / ".cache" / "fleetpipe"))


def kafka_libs(cache: Path | None = None, version: str = KAFKA_VERSION) -> Path:
    """The folder of the broker's jars, fetched with Maven on first use and cached."""
    home = (cache or default_cache()) / "kafka" / f"{SCALA_VERSION}-{version}"
    libs = home / "libs"
    stamp = home / ".complete"
    if stamp.exists():
        return libs
    if shutil.which("mvn") is None:
        raise StartError("Maven (mvn) is needed to fetch Kafka's jars from Maven Central")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(
        _POM.format(kafka=version, scala=SCALA_VERSION, log4j=LOG4J_VERSION)
    )
    tmp = home / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StartError(
            f"fetching Kafka {version} jars failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    stamp.write_text(version)
    return libs


@dataclass
class KafkaBroker(LocalServer):
    """One broker that is also its own KRaft controller, on loopback."""

    port: int
    controller_port: int
    libs: Path
    heap: str = "768m"
    # A SASL_SSL listener with SCRAM users and ACLs per service (kafka_security.py) on this
    # port, beside the plaintext one; none without.
    sasl_port: int | None = None

    @property
    def security(self) -> BrokerSecurity | None:
        if self.sasl_port is None:
            return None
        return BrokerSecurity(self.home / "security", self.sasl_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def marker(self) -> str:
        # Appears in the broker's command line: how `down` recognises its own process.
        return str(self.config_file)

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    log_name = "broker.log"

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def write_config(self) -> None:
        data = self.home / "data"
        self.home.mkdir(parents=True, exist_ok=True)
        advertised = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        controller = f"CONTROLLER://127.0.0.1:{self.controller_port}"
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        secure: list[str] = []
        if self.security is not None:
            self.security.prepare()
            advertised.append(f"SASL_SSL://{self.security.bootstrap}")
            protocols.append("SASL_SSL:SASL_SSL")
            secure = self.security.broker_config()
        self.config_file.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners={','.join([*advertised, controller])}",
                    f"advertised.listeners={','.join(advertised)}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"listener.security.protocol.map={','.join(protocols)}",
                    *secure,
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    # A single node: internal topics cannot have more than one replica.
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # Lets tests expire abandoned transactions quickly; services fence their own.
                    "transaction.max.timeout.ms=900000",
                    "log.retention.hours=72",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(_LOG4J2)

    def format(self) -> None:
        """Format the storage once; a formatted folder is reused across restarts."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                # '=' form: a random id may start with '-', which argparse takes for an option
                f"--cluster-id={cluster_id}",
                f"--config={self.config_file}",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StartError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def start(self, *, timeout: float = 90.0) -> int:
        self.write_config()
        self.format()
        pid = self._launch(
            self._java("kafka.Kafka", str(self.config_file)),
            ready=self.ready,
            what=f"Kafka broker on {self.bootstrap}",
            timeout=timeout,
        )
        if self.security is not None:
            self.security.provision(self.admin_settings)
        return pid

    @property
    def admin_settings(self) -> KafkaSettings:
        """The plaintext listener's settings (a super user's: see kafka_security.py)."""
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    def ready(self) -> bool:
        from fleetpipe.core.kafka import build_admin

        if not port_open(self.port):
            return False  # asking librdkafka before the port opens only fills the terminal
        admin = build_admin(self.admin_settings, timeout_s=2, overrides={"log_level": 0})
        return admin.brokers() > 0

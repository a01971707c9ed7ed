"""The fleet console as a child process, as the demo and the tests run it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for


@dataclass
class LocalConsole:
    kafka: KafkaSettings
    topics: Topics
    postgres_dsn: str
    schema: str
    log_file: Path
    tokens: Mapping[str, Sequence[str]]  # bearer token → fleets ("*": every fleet)
    port: int = 0  # 0: a free one
    extra: Mapping[str, str] = field(default_factory=dict)
    process: ServiceProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> LocalConsole:
        """Start it and wait until it is ready (the store answers, the stream reads)."""
        self.port = self.port or free_port()
        env = service_env(
            self.kafka,
            self.topics,
            {
                "FLEET_POSTGRES__DSN": self.postgres_dsn,
                "FLEET_POSTGRES__SCHEMA_NAME": self.schema,
                "FLEET_LISTEN_HOST": "127.0.0.1",
                "FLEET_LISTEN_PORT": str(self.port),
                "FLEET_CONSOLE_TOKENS": json.dumps({t: list(f) for t, f in self.tokens.items()}),
                "OTEL_SERVICE_NAME": "fleetpipe-console",
                **self.extra,
            },
        )
        process = ServiceProcess("fleetpipe.console", env, self.log_file).start()
        self.process = process

        def ready() -> bool:
            process.check_alive()
            try:
                url = f"{self.url}/readyz"  # our own console, on loopback
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                    return int(response.status) == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_for(ready, timeout=timeout, interval=0.2, what="the console to be ready")
        return self

    def stop(self) -> int:
        return self.process.stop() if self.process is not None else 0

"""A fleet console process over a filled hot store, with one token per fleet and one for all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for
from support.hotstore import HotStoreData

TOKEN_A = "token-of-fleet-a"
TOKEN_B = "token-of-fleet-b"
TOKEN_ALL = "token-of-operations"


@dataclass
class Console:
    process: ServiceProcess
    url: str

    def client(self, token: str | None = TOKEN_ALL) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def run_console(hot: HotStoreData, workdir: Path, **extra: str) -> Iterator[Console]:
    port = free_port()
    env = service_env(
        hot.kafka,
        hot.topics,
        {
            "FLEET_POSTGRES__DSN": hot.dsn,
            "FLEET_POSTGRES__SCHEMA_NAME": hot.schema,
            "FLEET_LISTEN_HOST": "127.0.0.1",
            "FLEET_LISTEN_PORT": str(port),
            "FLEET_CONSOLE_TOKENS": json.dumps(
                {TOKEN_A: ["fleet-a"], TOKEN_B: ["fleet-b"], TOKEN_ALL: ["*"]}
            ),
            **extra,
        },
    )
    process = ServiceProcess("fleetpipe.console", env, workdir / f"console-{port}.log").start()
    console = Console(process, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        process.check_alive()
        try:
            return httpx.get(f"{console.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, interval=0.2, what="the console to be ready")
        yield console
    finally:
        process.stop()

"""A fleet console process over a filled hot store, with one token per fleet and one for all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fleetpipe_dev.stack.console import LocalConsole
from support.hotstore import HotStoreData

TOKEN_A = "token-of-fleet-a"
TOKEN_B = "token-of-fleet-b"
TOKEN_ALL = "token-of-operations"


@dataclass
class Console:
    local: LocalConsole

    @property
    def url(self) -> str:
        return self.local.url

    def client(self, token: str | None = TOKEN_ALL) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def run_console(hot: HotStoreData, workdir: Path) -> Iterator[Console]:
    local = LocalConsole(
        hot.kafka,
        hot.topics,
        hot.dsn,
        hot.schema,
        workdir / f"console-{hot.schema}.log",
        tokens={TOKEN_A: ["fleet-a"], TOKEN_B: ["fleet-b"], TOKEN_ALL: ["*"]},
    )
    local.start()
    try:
        yield Console(local)
    finally:
        code = local.stop()
    assert code == 0, f"the console exited with {code} on SIGTERM"

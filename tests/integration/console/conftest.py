"""One hot store filled by the storage writer and one console over it, for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.console import Console, run_console
from support.hotstore import HotStoreData, fill
from support.servers import BrokerHandle, PostgresHandle


@pytest.fixture(scope="module")
def hot(kafka: BrokerHandle, postgres: PostgresHandle, workdir: Path) -> Iterator[HotStoreData]:
    yield from fill(kafka.settings, postgres.dsn, workdir)


@pytest.fixture(scope="module")
def console(hot: HotStoreData, workdir: Path) -> Iterator[Console]:
    yield from run_console(hot, workdir)

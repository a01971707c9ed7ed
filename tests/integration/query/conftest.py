"""One hot store for the module, filled by the real storage writer (see support.hotstore)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.hotstore import HotStoreData, fill
from support.servers import BrokerHandle, PostgresHandle


@pytest.fixture(scope="module")
def hot(kafka: BrokerHandle, postgres: PostgresHandle, workdir: Path) -> Iterator[HotStoreData]:
    yield from fill(kafka.settings, postgres.dsn, workdir)

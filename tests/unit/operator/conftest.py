"""Fixtures for the operator's unit tests: a reconciler wired to the fakes of fakes.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fleet_operator.ports import PipelineRef
from fleet_operator.reconcile import Reconciler
from fleet_operator.settings import OperatorSettings

from .fakes import FakeKafka, FakeKube, Journal, RecordingEvents


@dataclass
class World:
    """A reconciler wired to the fakes, with a clock the test moves."""

    kube: FakeKube
    kafka: FakeKafka
    events: RecordingEvents
    journal: Journal
    reconciler: Reconciler
    now: list[float]

    def reconcile(self, ref: PipelineRef, *, measure_lag: bool = False, retry: int = 0) -> None:
        self.reconciler.reconcile(ref, measure_lag=measure_lag, retry=retry)


@pytest.fixture
def world() -> World:
    journal = Journal()
    kube = FakeKube(journal)
    kafka = FakeKafka(journal)
    events = RecordingEvents()
    now = [1000.0]
    reconciler = Reconciler(
        OperatorSettings(retry_backoff_s=5, retry_backoff_max_s=60),
        kube,
        kafka,
        events,
        clock=lambda: now[0],
        utc_now=lambda: f"t{now[0]:.0f}",
    )
    return World(kube, kafka, events, journal, reconciler, now)

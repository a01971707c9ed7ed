"""Reading the services' metrics: their ``/metrics`` pages, or a Prometheus HTTP API.

Either way a read gives, per service, one :class:`Scrape`: whether it answered and its samples
by name and labels. The page text is parsed with the Prometheus client's own parser. A service
that does not answer is a scrape that is *down*, with the reason — never a scrape of zeros.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]

# Labels Prometheus adds to say where a series was scraped: summed away, so a service with
# three replicas reads as one.
TARGET_LABELS = frozenset(
    {"instance", "pod", "namespace", "service", "endpoint", "container", "job", "prometheus"}
)


@dataclass(frozen=True)
class Scrape:
    service: str
    at: float  # time.time() of the read
    up: bool
    error: str = ""
    samples: Samples = field(default_factory=dict)

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of ``name``'s samples whose labels include ``labels``; ``None`` when the
        service has no such metric (which is not the same as zero)."""
        wanted = set(labels.items())
        found = [v for (n, ls), v in self.samples.items() if n == name and wanted <= ls]
        return sum(found) if found else None

    def by_label(self, name: str, *labels: str) -> dict[tuple[str, ...], float]:
        """``name``'s samples summed by the values of ``labels``."""
        out: dict[tuple[str, ...], float] = {}
        for (n, ls), v in self.samples.items():
            if n == name:
                found = dict(ls)
                key = tuple(found.get(label, "") for label in labels)
                out[key] = out.get(key, 0.0) + v
        return out


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text page, by name and labels (``ValueError`` if it is not
    one)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return samples


class MetricsSource(Protocol):
    async def read(self) -> dict[str, Scrape]: ...


class Endpoints:
    """Each service's ``/metrics`` page, read directly (the local demo; a cluster without
    Prometheus)."""

    def __init__(self, targets: Mapping[str, str], *, timeout_s: float) -> None:
        self.targets = dict(targets)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def read(self) -> dict[str, Scrape]:
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            found = await asyncio.gather(
                *(self._one(session, name, url) for name, url in self.targets.items())
            )
        return {s.service: s for s in found}

    async def _one(self, session: aiohttp.ClientSession, service: str, base: str) -> Scrape:
        url = base.rstrip("/") + "/metrics"
        at = time.time()
        try:
            async with session.get(url) as reply:
                if reply.status != 200:
                    return Scrape(service, at, False, f"{url} answered {reply.status}")
                text = await reply.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Scrape(service, at, False, f"{url}: {type(exc).__name__} {exc}".strip())
        try:
            return Scrape(service, at, True, samples=parse_metrics(text))
        except ValueError as exc:
            return Scrape(service, at, False, f"{url} is not Prometheus text: {exc}")


class Prometheus:
    """A Prometheus HTTP API (``/api/v1/query``): every ``fleetpipe_*`` series and ``up``,
    grouped by ``service_label`` (``job``, as the chart's ServiceMonitors name them by
    component) and summed over a service's replicas."""

    def __init__(
        self, url: str, *, service_label: str, services: Sequence[str], timeout_s: float
    ) -> None:
        self.url = url.rstrip("/")
        self.service_label = service_label
        self.services = tuple(services)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _query(self, session: aiohttp.ClientSession, query: str) -> list[dict[str, Any]]:
        async with session.get(f"{self.url}/api/v1/query", params={"query": query}) as reply:
            body = await reply.json(content_type=None)
        if body.get("status") != "success":
            raise ValueError(f"Prometheus refused {query!r}: {body.get('error', body)}")
        return list(body["data"]["result"])

    async def read(self) -> dict[str, Scrape]:
        at = time.time()
        ours = "|".join(self.services)  # plain names (the settings check them)
        selector = f'{self.service_label}=~"{ours}"'
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                ups = await self._query(session, f"up{{{selector}}}")
                series = await self._query(session, f'{{__name__=~"fleetpipe_.+",{selector}}}')
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError) as exc:
            error = f"Prometheus at {self.url}: {type(exc).__name__} {exc}".strip()
            return {"prometheus": Scrape("prometheus", at, False, error)}
        # A service with no target at all is down too: Prometheus finds nothing to scrape.
        up: dict[str, bool] = {s: False for s in self.services}
        for row in ups:
            service = row["metric"].get(self.service_label)
            if service:
                up[service] = up.get(service, False) or float(row["value"][1]) == 1.0
        samples: dict[str, Samples] = {s: {} for s in up}
        for row in series:
            metric = dict(row["metric"])
            service = metric.get(self.service_label)
            if not service:
                continue
            name = metric.pop("__name__")
            labels = frozenset((k, v) for k, v in metric.items() if k not in TARGET_LABELS)
            mine = samples.setdefault(service, {})
            mine[(name, labels)] = mine.get((name, labels), 0.0) + float(row["value"][1])
        return {
            service: Scrape(service, at, True, samples=samples[service])
            if up[service]
            else Scrape(service, at, False, "Prometheus scrapes no target of it that is up")
            for service in self.services
        }

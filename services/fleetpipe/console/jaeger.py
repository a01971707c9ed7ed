"""Jaeger's query API, as the console reads an alert's traces from it.

Detection gives every alert transition a span named ``alert <rule>`` tagged with the alert's id
(``fleetpipe.alert.id``): the console searches detection's traces for that tag around the
alert's time, then reads each trace found with ``/api/traces/{id}``. It is the HTTP API every
Jaeger serves — the one built from the Go module here, without its UI, and the one of Jaeger's
image in a cluster, whose UI the console links to when ``traces.ui_url`` is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from fleetpipe.console.settings import TracesSettings
from fleetpipe.console.waterfall import MalformedTrace, Waterfall, waterfall

ALERT_ID_TAG = "fleetpipe.alert.id"


class TraceStoreUnavailable(Exception):
    """No trace store is configured, or it did not answer."""


@dataclass(frozen=True)
class AlertTrace:
    state: str  # the transition the trace's alert span is for: open, update, resolved
    waterfall: Waterfall
    ui_link: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "ui_link": self.ui_link, **self.waterfall.as_dict()}


class JaegerQuery:
    def __init__(self, settings: TracesSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.query_url)

    async def _get(self, session: aiohttp.ClientSession, path: str, **params: str) -> Any:
        url = self.settings.query_url.rstrip("/") + path
        try:
            async with session.get(url, params=params) as reply:
                if reply.status == 404:
                    return {"data": []}
                if reply.status != 200:
                    text = (await reply.text())[:200]
                    raise TraceStoreUnavailable(f"Jaeger answered {reply.status}: {text}")
                return await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise TraceStoreUnavailable(f"Jaeger's query API did not answer: {exc!r}") from exc

    async def alert_traces(self, alert_id: str, *, around_us: tuple[int, int]) -> list[AlertTrace]:
        """The traces of ``alert_id``'s transitions between the two epoch microseconds, oldest
        first."""
        if not self.configured:
            raise TraceStoreUnavailable("no trace store is configured (FLEET_TRACES__QUERY_URL)")
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=s.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            found = await self._get(
                session,
                "/api/traces",
                service=s.detection_service,
                tags=json.dumps({ALERT_ID_TAG: alert_id}),
                start=str(around_us[0]),
                end=str(around_us[1]),
                limit=str(s.max_traces),
            )
            ids = sorted({str(t.get("traceID")) for t in found.get("data") or [] if t})
            traces = []
            for trace_id in ids:
                full = await self._get(session, f"/api/traces/{trace_id}")
                for data in full.get("data") or []:
                    try:
                        drawn = waterfall(data)
                    except MalformedTrace as exc:
                        raise TraceStoreUnavailable(str(exc)) from exc
                    traces.append(
                        AlertTrace(_state(drawn, alert_id), drawn, self.ui_link(trace_id))
                    )
        return sorted(traces, key=lambda t: t.waterfall.start_us)

    def ui_link(self, trace_id: str) -> str | None:
        ui = self.settings.ui_url
        return f"{ui.rstrip('/')}/trace/{trace_id}" if ui else None


def _state(drawn: Waterfall, alert_id: str) -> str:
    for span in drawn.spans:
        if span.tags.get(ALERT_ID_TAG) == alert_id:
            return str(span.tags.get("fleetpipe.alert.state", ""))
    return ""

"""Windowed fleet KPIs: sliding event-time windows per fleet, model and vehicle type.

Reads enriched telemetry and alerts, writes one ``FleetKpi`` record per emitted window, group
and input partition to ``fleet.kpis.v1`` exactly once (see :mod:`fleetpipe.kpis.windows` for
the windows and the watermark, :mod:`fleetpipe.kpis.handler` for the transaction).
"""

"""Enrichment: raw telemetry → enriched telemetry, exactly once.

Each event gets its vehicle's registry entry (fleet, type, model, driver, speed profile), its
geohash zone (precision 6), the applicable speed limit and the gear expected at its speed.
Vehicles missing from the registry pass through with ``known=false`` and are counted in
``fleetpipe_enrichment_unknown_vehicle_events_total``. The registry file is re-read when it
changes, without a restart. Events whose location cannot be placed are dead-lettered.
"""

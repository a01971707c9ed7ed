"""Devices over MQTT: the topic layout, per-device credentials and the bridge to Kafka.

The bridge is part of ingest's package, so it validates with ingest's own code and produces
through ingest's own Kafka sink, but it runs as a process of its own (``python -m
fleetpipe.ingest.mqtt``): see ``bridge.py`` for why.
"""

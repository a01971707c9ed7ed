"""Ingest: the gRPC entry point. Validates telemetry batches, stamps ingest time and produces the
accepted events to the raw topic, acknowledging a batch only once Kafka holds all of it.

- ``validation.py`` — the per-event checks (pure).
- ``auth.py`` — bearer tokens bound to fleets, from a mounted Secret file or the environment.
- ``sink.py`` — the Kafka side: per-batch delivery tracking and the in-flight bound.
- ``server.py`` — the grpc.aio servicer, health checking and reflection.
- ``__main__.py`` — wiring only.
"""

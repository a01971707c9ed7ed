"""FleetPipe: real-time vehicle telemetry on Kafka."""

__version__ = "0.1.0"

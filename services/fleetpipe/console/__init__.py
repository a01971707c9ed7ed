"""The fleet console: a read-only HTTP API over the hot store, a live stream of alerts and
positions from Kafka, and a web page with a map, served by ``fleetpipe-console``."""

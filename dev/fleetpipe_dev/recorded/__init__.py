"""A recorded input: telemetry as it reached the raw topic in a real run, kept as a file."""

"""The shared core: the only code that touches Kafka, HTTP health, metrics and logging."""

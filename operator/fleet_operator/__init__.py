"""The FleetPipeline operator (kopf)."""

"""Generated from protos/fleetpipe/v1. Never edit."""

"""kwok Stage definitions (package data), read by ``fleetpipe_dev.stack.kube``."""

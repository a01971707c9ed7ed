"""kwok Stage definitions (package data), read by ``fleetpipe.devstack.kube``."""

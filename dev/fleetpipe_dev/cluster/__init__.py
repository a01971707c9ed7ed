"""``fleetpipe dev cluster``: a one-node Kubernetes with real pods, in a network namespace."""

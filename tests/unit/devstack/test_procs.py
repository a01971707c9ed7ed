"""Free ports for the servers the dev stack and the tests start."""

from __future__ import annotations

import socket

import pytest

from fleetpipe_dev.stack.procs import free_port

pytestmark = pytest.mark.unit


def test_free_ports_are_never_handed_out_twice() -> None:
    # One server takes several ports picked one after another (Jaeger takes five); the kernel
    # may offer a closed probe's port again, and two listeners on one port fail to start.
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[-1]))  # free indeed: nobody listens there

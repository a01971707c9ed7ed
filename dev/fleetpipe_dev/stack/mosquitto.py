"""Eclipse Mosquitto from Debian's packages, on loopback, with per-device accounts.

The broker allows no anonymous client: it reads a password file and an ACL file from its home,
written by :meth:`MosquittoServer.write_auth` (from the registry and the fleet tokens, see
``fleetpipe.ingest.mqtt.credentials``) and re-read on SIGHUP, so the demo and the tests add
their fleets' devices to a running broker. Messages survive a broker restart (persistence).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleetpipe.ingest.mqtt.credentials import BRIDGE_USER, BrokerAuth, broker_auth
from fleetpipe.registry import Vehicle
from fleetpipe_dev.stack.procs import StartError, port_open
from fleetpipe_dev.stack.server import LocalServer

_CONF = """# Written by fleetpipe's dev stack; a restart rewrites it.
per_listener_settings false
user {user}
allow_anonymous false
password_file {home}/passwd
acl_file {home}/acl
listener {port} 127.0.0.1
persistence true
persistence_location {home}/data/
autosave_interval 1
# A bridge replica that is down keeps its session: what arrives meanwhile waits for it.
persistent_client_expiration 1d
max_queued_messages 1000000
max_queued_bytes 0
log_dest stdout
log_type error
log_type warning
log_type notice
connection_messages false
"""


def mosquitto_binary() -> Path:
    """The broker: FLEETPIPE_MOSQUITTO, else Debian's /usr/sbin/mosquitto or one on the PATH."""
    explicit = os.environ.get("FLEETPIPE_MOSQUITTO")
    for candidate in (explicit, "/usr/sbin/mosquitto", shutil.which("mosquitto")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise StartError(
        "mosquitto not found: install Debian's package (apt-get install mosquitto, which "
        "scripts/setup.sh does) or set FLEETPIPE_MOSQUITTO"
    )


@dataclass
class MosquittoServer(LocalServer):
    port: int
    # The bridge's own password, chosen by whoever starts the broker (kept in memory only).
    bridge_password: str

    log_name = "mosquitto.log"
    bridge_user = BRIDGE_USER

    @property
    def config_file(self) -> Path:
        return self.home / "mosquitto.conf"

    @property
    def marker(self) -> str:
        return str(self.config_file)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def write_auth(self, vehicles: Iterable[Vehicle], tokens: Mapping[str, str]) -> BrokerAuth:
        """Write the password and ACL files for ``vehicles`` (token → fleet in ``tokens``)."""
        auth = broker_auth(vehicles, tokens, bridge_password=self.bridge_password)
        self.home.mkdir(parents=True, exist_ok=True)
        for name, text in (("passwd", auth.password_file), ("acl", auth.acl_file)):
            tmp = self.home / f"{name}.tmp"
            tmp.write_text(text)
            tmp.chmod(0o600)
            tmp.replace(self.home / name)
        return auth

    def reload(self, pid: int) -> None:
        """Make the broker re-read its password and ACL files."""
        os.kill(pid, signal.SIGHUP)

    def start(self, *, timeout: float = 30.0) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "data").mkdir(exist_ok=True)
        if not (self.home / "passwd").exists():
            self.write_auth((), {})
        # Started as root, Mosquitto would switch to the 'mosquitto' user, which cannot reach
        # a home under root's 0700 folders (~/.cache, pytest's temporary ones). This broker
        # listens on loopback only and is the developer's own: it keeps the starting user.
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.config_file.write_text(_CONF.format(home=self.home, port=self.port, user=user))
        return self._launch(
            [str(mosquitto_binary()), "-c", str(self.config_file)],
            ready=lambda: port_open(self.port),
            what=f"mosquitto on {self.address}",
            timeout=timeout,
            cwd=self.home,
        )

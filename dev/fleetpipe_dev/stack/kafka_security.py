"""The local broker's SASL_SSL listener: TLS material, SCRAM users, ACLs per service.

Beside its plaintext listener (kept for tools and for tests that do not care), the broker
listens with SASL_SSL: TLS with a certificate for 127.0.0.1 and localhost signed by a CA made
here with Debian's openssl, and SCRAM-SHA-512 logins. KRaft's StandardAuthorizer decides what
each login may do, from ACLs that :mod:`fleetpipe.core.access` says for every service: one
principal per service, and ``admin``, a super user for tooling and tests. The plaintext
listener's clients are ``User:ANONYMOUS``, a super user as well: that listener, on loopback
only, is the administrator's door.

Everything is made once per broker folder and kept there (the key and passwords 0600), so a
restarted broker keeps its certificate and its users.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from fleetpipe.core.access import Pattern, Principal, pipeline_rules
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.procs import StartError

SUPER_USER = "admin"
MECHANISM: Final = "SCRAM-SHA-512"
USERS: tuple[str, ...] = (SUPER_USER, *(p.value for p in Principal))

_SERVER_EXTENSIONS = """basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


@dataclass(frozen=True)
class BrokerSecurity:
    """The SASL_SSL side of one local broker, its files under ``home``."""

    home: Path
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients trust (``ssl.ca.location``)."""
        return self.home / "ca.crt"

    @property
    def keystore(self) -> Path:
        """The broker's private key and certificate chain, PEM."""
        return self.home / "server.pem"

    @property
    def users_file(self) -> Path:
        return self.home / "users.json"

    def prepare(self) -> None:
        """Make the TLS material and the users' passwords unless they are there already."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        if not self.keystore.exists():
            self._make_certificates()
        if not self.users_file.exists():
            self.users_file.touch(mode=0o600)
            # Hex: no character that the broker's or librdkafka's config syntax treats apart.
            self.users_file.write_text(json.dumps({u: secrets.token_hex(16) for u in USERS}))

    def passwords(self) -> dict[str, str]:
        found: dict[str, str] = json.loads(self.users_file.read_text())
        return found

    def _make_certificates(self) -> None:
        ca_key = self.home / "ca.key"
        key, csr, crt = self.home / "server.key", self.home / "server.csr", self.home / "server.crt"
        extensions = self.home / "server.ext"
        extensions.write_text(_SERVER_EXTENSIONS)
        # fmt: off
        steps = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
             "-out", str(self.ca_file), "-days", "3650", "-subj", "/CN=FleetPipe local CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", str(csr), "-CA", str(self.ca_file), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "3650", "-out", str(crt), "-extfile", str(extensions)],
        ]
        # fmt: on
        for args in steps:
            result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StartError(f"openssl {args[0]} failed: {result.stderr.strip()}")
        # PKCS#8 key then the chain: the PEM keystore the broker reads.
        pem = key.read_text() + crt.read_text() + self.ca_file.read_text()
        self.keystore.touch(mode=0o600)
        self.keystore.write_text(pem)
        for path in (ca_key, key, csr):
            path.unlink()

    def broker_config(self) -> list[str]:
        """The broker's settings for the listener and the authorizer (beside the listener
        lists, which the broker's own configuration holds)."""
        return [
            f"sasl.enabled.mechanisms={MECHANISM}",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:ANONYMOUS;User:{SUPER_USER}",
        ]

    def provision(self, admin_settings: KafkaSettings) -> None:
        """Create the users and every principal's ACLs, through the plaintext listener.

        The ACLs are prefixes of the pipeline's default topic names and groups: they cover the
        default pipeline and every side-by-side one whose names add a suffix (tests, demos).
        """
        # The Kafka client library is loaded when a broker starts, not with the command line.
        from fleetpipe.core.acls import apply_acls, upsert_scram_users
        from fleetpipe.core.errors import KafkaError
        from fleetpipe.core.kafka import build_admin

        admin = build_admin(admin_settings, timeout_s=30)
        # A broker that has just started answers metadata before its controller has loaded
        # the authorizer's state: a refused first attempt is retried for a while.
        for attempt in Retrying(
            retry=retry_if_exception_type(KafkaError),
            wait=wait_fixed(1),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                upsert_scram_users(admin, self.passwords())
                apply_acls(admin, pipeline_rules(Topics(), pattern=Pattern.PREFIXED))

    def client_settings(self, user: str, *, password: str | None = None) -> KafkaSettings:
        """Settings of a client that logs in as ``user`` (with its own password unless one is
        given: a test of a wrong one)."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=user,
            sasl_password=SecretStr(password if password is not None else self.passwords()[user]),
            ssl_ca_location=str(self.ca_file),
        )


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """``FLEET_KAFKA__*`` variables that make a service's settings connect as ``kafka`` does."""
    env = {"FLEET_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    if kafka.security_protocol != "PLAINTEXT":
        env["FLEET_KAFKA__SECURITY_PROTOCOL"] = kafka.security_protocol
    if kafka.sasl_mechanism:
        env["FLEET_KAFKA__SASL_MECHANISM"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        env["FLEET_KAFKA__SASL_USERNAME"] = kafka.sasl_username
    if kafka.sasl_password is not None:
        env["FLEET_KAFKA__SASL_PASSWORD"] = kafka.sasl_password.get_secret_value()
    if kafka.ssl_ca_location:
        env["FLEET_KAFKA__SSL_CA_LOCATION"] = kafka.ssl_ca_location
    return env

"""The local PostgreSQL's logins: the owner's door, and a role with a password per service.

The cluster's owner (``fleetpipe``, who runs the migrations and owns every object) logs in
over loopback without a password, as initdb's trust set it up: the administrator's door of a
throw-away cluster. Every other role must give its password (SCRAM-SHA-256), so a service with
a wrong one is refused as it would be anywhere. The service roles
(:class:`fleetpipe.core.dbroles.DatabaseRoles`) are made here, with passwords made once and
kept (0600) in the server's folder; what each may do in a schema is granted by
:func:`fleetpipe.core.dbroles.grant` after the schema's migrations.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from fleetpipe.core.dbroles import DatabaseRoles

_HBA = """# FleetPipe's local cluster (written at every start): the owner without a password over
# loopback and the local socket, every other role with SCRAM-SHA-256.
local all {owner} trust
host  all {owner} 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
"""


def write_hba(data_dir: Path, *, owner: str, server_user: str | None) -> None:
    """Write ``pg_hba.conf`` (read when the server starts), owned by the server's user."""
    path = data_dir / "pg_hba.conf"
    path.write_text(_HBA.format(owner=owner))
    if server_user is not None:
        entry = pwd.getpwnam(server_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class ServiceLogins:
    """The services' roles of one local cluster and their passwords (under ``home``)."""

    home: Path
    port: int
    database: str
    roles: DatabaseRoles = field(default_factory=DatabaseRoles)

    @property
    def passwords_file(self) -> Path:
        return self.home / "roles.json"

    def passwords(self) -> dict[str, str]:
        if not self.passwords_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            self.passwords_file.touch(mode=0o600)
            self.passwords_file.write_text(
                json.dumps({role: secrets.token_hex(16) for role in self.roles.names()})
            )
        found: dict[str, str] = json.loads(self.passwords_file.read_text())
        return found

    def ensure(self, owner_dsn: str) -> None:
        """Create each role (or set its password again) as the cluster's owner."""
        import psycopg

        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            for role, password in self.passwords().items():
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                ).fetchone()
                verb = "ALTER" if exists else "CREATE"
                # A literal, not a parameter: utility statements take none. PostgreSQL hashes
                # it (SCRAM) before storing it.
                conn.execute(
                    sql.SQL(
                        "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(sql.SQL(verb), sql.Identifier(role), sql.Literal(password))
                )

    def dsn(self, role: str, *, password: str | None = None) -> str:
        """A DSN that logs in as ``role`` (with its own password unless one is given)."""
        secret = password if password is not None else self.passwords()[role]
        return f"postgresql://{role}:{secret}@127.0.0.1:{self.port}/{self.database}"

"""The local pipeline's logins: every service as its own Kafka principal and database role.

Where the dev stack runs the services (the demo, ``fleetpipe dev``), each connects to the
broker's SASL_SSL listener as its own principal (ACLs: ``fleetpipe.core.access``) and to
PostgreSQL as its own role (grants: ``fleetpipe.core.dbroles``), as in a cluster. The schema is
migrated by its owner first, then the roles are granted their share: a service role may not
migrate, and finds its schema current.
"""

from __future__ import annotations

from fleetpipe.core import dbroles
from fleetpipe.core.access import Principal
from fleetpipe.core.db import PostgresSettings
from fleetpipe.schema.owner import migrate_schema
from fleetpipe_dev.stack.kafka_security import BrokerSecurity, kafka_env
from fleetpipe_dev.stack.pg_roles import ServiceLogins

# The local pipeline's processes and the Kafka principal each logs in as: the MQTT bridge is a
# way into ingest and writes what ingest writes.
PRINCIPALS = {
    "ingest": Principal.INGEST,
    "mqtt-bridge": Principal.INGEST,
    "enrichment": Principal.ENRICHMENT,
    "detection": Principal.DETECTION,
    "notification": Principal.NOTIFICATION,
    "storage-writer": Principal.STORAGE_WRITER,
    "console": Principal.CONSOLE,
    "kpis": Principal.KPIS,
}


def prepare_schema(owner: PostgresSettings, roles: dbroles.DatabaseRoles) -> None:
    """Migrate ``owner``'s schema as its owner, then grant the service roles their share
    (what ``fleetpipe db migrate`` does in a cluster)."""
    migrate_schema(owner, roles, timeout_s=60)


def service_logins(security: BrokerSecurity, logins: ServiceLogins) -> dict[str, dict[str, str]]:
    """Per local process, the ``FLEET_*`` variables that log it in as itself."""
    roles = logins.roles
    database = {
        "storage-writer": roles.storage_writer,
        "notification": roles.notification,
        "console": roles.reader,
    }
    found: dict[str, dict[str, str]] = {}
    for process, principal in PRINCIPALS.items():
        env = kafka_env(security.client_settings(principal.value))
        if process in database:
            env["FLEET_POSTGRES__DSN"] = logins.dsn(database[process])
        found[process] = env
    return found

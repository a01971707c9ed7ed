"""Per-device MQTT credentials and topic ACLs, generated from the registry and fleet tokens.

Every vehicle of the registry is an MQTT user named by its vehicle id. Its password is derived
from its fleet's ingest token (HMAC-SHA256 of the vehicle id), so whoever holds a fleet's token
can provision its devices without a list of passwords to keep, and rotating the token rotates
them all. The broker gets two files in Mosquitto's formats: a password file (PBKDF2-SHA512
hashes, ``$7$``, never a password) and an ACL file in which each device may write only its own
telemetry topic and read only its own rejections, and the bridge reads all telemetry and
writes all rejections. Mosquitto re-reads both on SIGHUP.

Each fleet also gets one gateway account, ``gateway/{fleet}`` (a '/' no vehicle id has), with
a password derived the same way: it may write any of its own fleet's vehicles' telemetry and
read their rejections, never another fleet's. It is for a device gateway that forwards for
many vehicles (a depot's, a telematics provider's), and for the load driver, which simulates a
whole fleet over a few connections; it holds no more than the fleet's ingest token does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fleetpipe.core.errors import ConfigError
from fleetpipe.ingest.mqtt.topics import (
    REJECTIONS_FILTER,
    TELEMETRY_FILTER,
    rejections_topic,
    telemetry_topic,
    valid_device_id,
    valid_fleet_id,
)
from fleetpipe.registry import Vehicle

BRIDGE_USER = "fleetpipe-bridge"
# Mosquitto's own default for mosquitto_passwd: the broker hashes each CONNECT's password with
# this many rounds, so a reconnect storm of a whole fleet must stay cheap.
HASH_ITERATIONS = 101
_SALT_BYTES = 12


class CredentialsError(ConfigError):
    """The registry or the tokens cannot be turned into broker credentials."""


def device_password(fleet_token: str, vehicle_id: str) -> str:
    """The MQTT password of a vehicle, derived from its fleet's ingest token."""
    mac = hmac.new(fleet_token.encode(), b"mqtt-device:" + vehicle_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def gateway_user(fleet_id: str) -> str:
    return f"gateway/{fleet_id}"


def gateway_password(fleet_token: str, fleet_id: str) -> str:
    """The MQTT password of a fleet's gateway account, derived from the fleet's token."""
    mac = hmac.new(fleet_token.encode(), b"mqtt-gateway:" + fleet_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto password-file hash (``$7$``: PBKDF2-HMAC-SHA512, as mosquitto_passwd)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ITERATIONS, 64)
    b64 = base64.b64encode
    return f"$7${HASH_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def first_token_per_fleet(tokens: Mapping[str, str]) -> dict[str, str]:
    """Fleet → the token its device passwords derive from: the first one listed for it (a
    fleet rotating its token lists the new one first)."""
    out: dict[str, str] = {}
    for token, fleet in tokens.items():
        out.setdefault(fleet, token)
    return out


@dataclass
class BrokerAuth:
    """The two files' text, and the vehicles left out (with why)."""

    password_file: str
    acl_file: str
    devices: int
    skipped: dict[str, str] = field(default_factory=dict)  # vehicle id -> reason


def broker_auth(
    vehicles: Iterable[Vehicle],
    tokens: Mapping[str, str],
    *,
    bridge_password: str,
    bridge_user: str = BRIDGE_USER,
) -> BrokerAuth:
    """The password and ACL files for ``vehicles``, with ``tokens`` (token → fleet id).

    A vehicle whose fleet has no token, or whose id cannot be an MQTT user name, gets no
    account and is listed in ``skipped``: it cannot connect, which is what it should see.
    """
    if len(bridge_password) < 16:
        raise CredentialsError("the bridge's MQTT password must have at least 16 characters")
    keys = first_token_per_fleet(tokens)
    for fleet in keys:
        if not valid_fleet_id(fleet):
            raise CredentialsError(
                f"fleet id {fleet[:64]!r} cannot be an MQTT topic level: use letters, digits "
                "and . _ -"
            )
    passwd = [f"{bridge_user}:{password_hash(bridge_password)}"]
    acl = [
        f"user {bridge_user}",
        f"topic read {TELEMETRY_FILTER}",
        f"topic write {REJECTIONS_FILTER}",
        "",
    ]
    for fleet, fleet_token in keys.items():
        user = gateway_user(fleet)
        passwd.append(f"{user}:{password_hash(gateway_password(fleet_token, fleet))}")
        any_vehicle = telemetry_topic(fleet, "+")
        acl += [
            f"user {user}",
            f"topic write {any_vehicle}",
            f"topic write {any_vehicle}/+",
            f"topic read {rejections_topic(fleet, '+')}",
            "",
        ]
    skipped: dict[str, str] = {}
    devices = 0
    for v in vehicles:
        token = keys.get(v.fleet_id)
        if token is None:
            skipped[v.vehicle_id] = f"fleet {v.fleet_id!r} has no ingest token"
            continue
        if not valid_device_id(v.vehicle_id) or v.vehicle_id == bridge_user:
            skipped[v.vehicle_id] = "the vehicle id cannot be an MQTT user name"
            continue
        passwd.append(f"{v.vehicle_id}:{password_hash(device_password(token, v.vehicle_id))}")
        own = telemetry_topic(v.fleet_id, v.vehicle_id)
        acl += [
            f"user {v.vehicle_id}",
            f"topic write {own}",
            f"topic write {own}/+",
            f"topic read {rejections_topic(v.fleet_id, v.vehicle_id)}",
            "",
        ]
        devices += 1
    return BrokerAuth("\n".join(passwd) + "\n", "\n".join(acl), devices, skipped)

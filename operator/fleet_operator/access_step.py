"""The reconcile's access step: the services' SCRAM logins and ACLs, with ``kafka.access``
Managed (what they are: :mod:`fleet_operator.kafka_access`).

Run after the topics and before the children, so that a service starting finds its rights. The
operator logs in as its own principal, which needs ALTER on the cluster for this; a refusal is
said in the ``KafkaAccessApplied`` condition and never fails the rest of the reconcile. Passwords
are read from the Secrets for each reconcile, sent to the brokers only when they changed
(a digest is kept in memory, never the password), and appear in no log, status or Event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from fleet_operator import kafka_access
from fleet_operator.decisions import NORMAL, WARNING, Event, Prior
from fleet_operator.kafka_access import AccessOutcome
from fleet_operator.kafka_login import kafka_settings, read_login
from fleet_operator.ports import (
    AccessRefused,
    KafkaApi,
    KafkaUnavailable,
    KubeApi,
    PipelineRef,
    TopicsFailed,
)
from fleet_operator.spec import FleetPipelineSpec, KafkaAccess
from fleetpipe.core.access import Principal
from fleetpipe.core.settings import KafkaSettings

log = logging.getLogger(__name__)


class _NotApplied(Exception):
    """The rights cannot be applied this time; the message says why (no secret in it)."""


class KafkaAccessStep:
    def __init__(self, kube: KubeApi, kafka: KafkaApi) -> None:
        self.kube = kube
        self.kafka = kafka
        # Per pipeline uid: a digest of the logins last set (re-sent after a restart).
        self._logins: dict[str, str] = {}
        self._lock = threading.Lock()

    def apply(
        self,
        ref: PipelineRef,
        prior: Prior,
        spec: FleetPipelineSpec,
        kafka: KafkaSettings,
        status: Mapping[str, Any],
        *,
        missing: Sequence[str],
    ) -> AccessOutcome | None:
        """Bring the brokers' logins and ACLs to ``spec``; None when there is nothing to say.

        ``status``: the pipeline's status as read (its record of ACLs applied); ``missing``:
        the Secrets known missing (their services are left out, the missing-Secret condition
        names them)."""
        kept = kafka_access.recorded(status)
        if spec.kafka.access is not KafkaAccess.MANAGED:
            return kafka_access.unmanaged(prior, kept)
        try:
            passwords, users = self._read_logins(ref, spec, kafka, missing)
            logins_set = self._set_logins(ref.uid, spec, kafka, passwords)
            wanted = kafka_access.wanted_rules(spec, users)
            added = set(wanted) - set(kept)
            if added:
                # Recorded before they exist: a reconcile cut short after creating them still
                # knows them, to remove later.
                record = kafka_access.record([*kept, *wanted])
                self.kube.patch_status(ref.namespace, ref.name, {"kafkaAccess": {"acls": record}})
            self.kafka.create_acls(kafka, wanted)
            stale = [r for r in kept if r not in set(wanted)]
            if stale:
                self.kafka.delete_acls(kafka, stale)
        except (_NotApplied, AccessRefused, KafkaUnavailable, TopicsFailed) as exc:
            log.warning("%s/%s: Kafka access not applied: %s", ref.namespace, ref.name, exc)
            return kafka_access.refused(prior, str(exc), kept=kept)
        return kafka_access.applied(
            prior,
            wanted,
            logins=len(passwords),
            added=len(added),
            removed=len(stale),
            logins_set=logins_set,
        )

    def remove(
        self, ref: PipelineRef, spec: FleetPipelineSpec, status: Mapping[str, Any]
    ) -> list[Event]:
        """The finalizer's part: every ACL the status says the operator applied, whatever
        ``spec.kafka.access`` says now; the Events to post. KafkaUnavailable and KubeApiError
        go to the caller (to try again); a refusal is said and lets the pipeline go, as
        retrying would not grant the right."""
        with self._lock:
            self._logins.pop(ref.uid, None)
        kept = kafka_access.recorded(status)
        if not kept:
            return []
        login = read_login(self.kube, ref.namespace, spec, missing=None)
        try:
            removed = self.kafka.delete_acls(kafka_settings(spec, login), kept)
        except (AccessRefused, TopicsFailed) as exc:
            return [Event(WARNING, kafka_access.ACCESS_REFUSED, f"ACLs not removed: {exc}")]
        return [Event(NORMAL, kafka_access.KAFKA_ACCESS_REMOVED, f"{removed} ACLs removed")]

    def _read_logins(
        self,
        ref: PipelineRef,
        spec: FleetPipelineSpec,
        kafka: KafkaSettings,
        missing: Sequence[str],
    ) -> tuple[dict[str, str], dict[Principal, str]]:
        passwords: dict[str, str] = {}
        users: dict[Principal, str] = {}
        for principal, secret in kafka_access.login_secrets(spec).items():
            if secret in missing:
                continue
            values = self.kube.secret_values(ref.namespace, secret, ("username", "password"))
            user, password = values.get("username"), values.get("password")
            if not user or not password:
                raise _NotApplied(
                    f"Secret {secret} (the {principal.value} login) needs the keys username "
                    "and password"
                )
            if user == kafka.sasl_username:
                raise _NotApplied(
                    f"Secret {secret} names User:{user}, the operator's own login, for "
                    f"{principal.value}: a service principal must be a user of its own"
                )
            if passwords.get(user, password) != password:
                raise _NotApplied(f"two login Secrets give User:{user} different passwords")
            passwords[user] = password
            users[principal] = user
        return passwords, users

    def _set_logins(
        self, uid: str, spec: FleetPipelineSpec, kafka: KafkaSettings, passwords: dict[str, str]
    ) -> bool:
        """Set the SCRAM logins unless the same ones were set last time; whether it did."""
        mechanism = spec.kafka.sasl_mechanism or "SCRAM-SHA-512"
        digest = hashlib.sha256(
            json.dumps([mechanism, sorted(passwords.items())]).encode()
        ).hexdigest()
        with self._lock:
            if self._logins.get(uid) == digest:
                return False
        self.kafka.set_scram_logins(kafka, passwords, mechanism=mechanism)
        with self._lock:
            self._logins[uid] = digest
        return True

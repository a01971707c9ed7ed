"""The lake's compaction CronJob, when the FleetPipeline has ``spec.lake``. Pure, as render.py.

The job is ``fleetpipe lake compact`` with the spec's retention as its arguments (visible on
the CronJob, and changed by a patch of the pipeline like any other child). It reads the lake
where the storage writer files it: the bucket of ``storage.coldUrl`` with its credentials by
Secret reference, or the claim of ``storage.coldVolumeClaim`` mounted at the same path.
"""

from __future__ import annotations

from fleet_operator.credentials import database_secret
from fleet_operator.objects import (
    Manifest,
    Owner,
    child_metadata,
    child_name,
    container_security,
    env_secret,
    env_value,
    labels,
    pod_security,
)
from fleet_operator.render import (
    S3_CREDENTIAL_KEYS,
)
from fleet_operator.spec import FleetPipelineSpec, LakeSpec

COMPONENT = "lake-compaction"
DEFAULT_RESOURCES: Manifest = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"memory": "4Gi"},
}
# A day's compaction of a large fleet takes minutes; a run stuck for an hour is ended, and the
# next one finishes its work (the job is resumable).
ACTIVE_DEADLINE_S = 3600


def compaction_args(lake: LakeSpec) -> list[str]:
    return [
        "lake",
        "compact",
        "--bronze-days",
        str(lake.bronze_retention_days),
        "--silver-days",
        str(lake.silver_retention_days),
        "--gold-days",
        str(lake.gold_retention_days),
    ]


def _env(spec: FleetPipelineSpec) -> list[Manifest]:
    storage = spec.storage
    env = [env_value("FLEET_LAKE__PATH", storage.cold_path)]
    if storage.cold_url:
        env.append(env_value("FLEET_LAKE__URL", storage.cold_url))
    if storage.cold_credentials_secret:
        env += [env_secret(key, storage.cold_credentials_secret, key) for key in S3_CREDENTIAL_KEYS]
    # The erasure audit, so that no erased subject's rows reach silver or gold: read with the
    # storage writer's login, which may read the audit (and honours it itself).
    env.append(env_secret("FLEET_POSTGRES__DSN", database_secret(spec, "storage-writer"), "dsn"))
    return env


def lake_compaction(owner: Owner, spec: FleetPipelineSpec) -> list[Manifest]:
    """The CronJob, or none without ``spec.lake``."""
    lake = spec.lake
    if lake is None:
        return []
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - in the pod
    claim = spec.storage.cold_volume_claim
    if claim:
        volumes.append({"name": "cold", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "cold", "mountPath": spec.storage.cold_path})
    container: Manifest = {
        "name": "compact",
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["fleetpipe"],
        "args": compaction_args(lake),
        "env": _env(spec),
        "resources": lake.resources or DEFAULT_RESOURCES,
        "volumeMounts": mounts,
        "securityContext": container_security(),
    }
    pod: Manifest = {
        "restartPolicy": "Never",
        # The job never talks to the Kubernetes API.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": volumes,
    }
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": child_metadata(owner, child_name(owner, COMPONENT), COMPONENT),
            "spec": {
                "schedule": lake.compaction_schedule,
                "timeZone": "Etc/UTC",
                "suspend": lake.suspend,
                # Runs never overlap: a slow run is finished, not raced.
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "activeDeadlineSeconds": ACTIVE_DEADLINE_S,
                        "template": {
                            "metadata": {"labels": labels(owner, COMPONENT)},
                            "spec": pod,
                        },
                    }
                },
            },
        }
    ]

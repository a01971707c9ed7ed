"""The operator's own settings: ``FLEET_OPERATOR_*`` variables, built once in ``main()``.

Everything about a pipeline comes from its FleetPipeline; these only say how the operator runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_OPERATOR_", frozen=True, extra="ignore")

    # Watch one namespace; empty: every namespace (cluster-wide RBAC).
    namespace: str = ""
    # How often each pipeline is checked for drift and lag.
    timer_interval_s: float = Field(default=30.0, gt=0, le=3600)
    # Upper bound of one Kafka admin call; an unreachable broker fails after this long.
    kafka_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # On SIGTERM, how long to wait for running reconciles (their status and Events) to finish;
    # below the pod's terminationGracePeriodSeconds (30 s by default).
    shutdown_grace_s: float = Field(default=20.0, gt=0, le=600)
    # Retries after a failure (Kafka unreachable): base * 2^retry, at most max.
    retry_backoff_s: float = Field(default=5.0, gt=0)
    retry_backoff_max_s: float = Field(default=300.0, gt=0)
    # kopf's liveness endpoint (GET /healthz) for the pod's livenessProbe.
    health_host: str = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod from outside
    health_port: int = Field(default=8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    def backoff(self, retry: int) -> float:
        return float(min(self.retry_backoff_s * 2 ** min(retry, 20), self.retry_backoff_max_s))

"""``fleetpipe-operator`` / ``python -m fleet_operator``: run the FleetPipeline operator.

Settings come from ``FLEET_OPERATOR_*`` (see settings.py); the Kubernetes connection from the
pod's ServiceAccount or ``$KUBECONFIG``. kopf serves the liveness endpoint at /healthz.
"""

from __future__ import annotations

import kopf

from fleet_operator.cluster import KafkaGateway, KubeEvents, KubeGateway
from fleet_operator.handlers import build_registry, configure
from fleet_operator.reconcile import Reconciler
from fleet_operator.settings import OperatorSettings
from fleetpipe.core.logs import configure_logging


def main() -> None:
    settings = OperatorSettings()
    configure_logging(service="operator", level=settings.log_level, fmt=settings.log_format)
    kube = KubeGateway.from_environment()
    reconciler = Reconciler(
        settings, kube, KafkaGateway(timeout_s=settings.kafka_timeout_s), KubeEvents(kube)
    )
    kopf.run(
        registry=build_registry(reconciler, settings),
        settings=configure(kopf.OperatorSettings()),
        # One active operator (a Deployment of one replica): no peering objects needed.
        standalone=True,
        clusterwide=not settings.namespace,
        namespaces=[settings.namespace] if settings.namespace else (),
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
    )


if __name__ == "__main__":
    main()

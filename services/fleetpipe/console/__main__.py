"""``python -m fleetpipe.console`` / ``fleetpipe-console``: wiring only.

Configured by ``FLEET_*`` variables (see settings.py); the database DSN and the tokens come from
Secrets through the environment.
"""

from __future__ import annotations

import signal

import uvicorn

from fleetpipe.console.app import create_app
from fleetpipe.console.settings import ConsoleSettings
from fleetpipe.core.logs import configure_logging
from fleetpipe.core.runtime import tune_gc
from fleetpipe.core.tracing import setup_tracing


def main() -> None:
    settings = ConsoleSettings()
    configure_logging(
        service="console",
        level=settings.observability.log_level,
        fmt=settings.observability.log_format,
    )
    tracing = setup_tracing("console", instance_id=settings.instance_id)
    app = create_app(settings, tracing=tracing)
    # Uvicorn stops gracefully on SIGTERM and then raises the signal again once its own
    # handlers are gone; with this one in place the process then ends with 0, as the other
    # services do after their drain.
    signal.signal(signal.SIGTERM, lambda *_: None)
    # The app and its settings live as long as the console does (core.runtime).
    tune_gc(settings.runtime)
    try:
        uvicorn.run(
            app,
            host=settings.listen_host,
            port=settings.listen_port,
            log_config=None,
            access_log=False,
        )
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()

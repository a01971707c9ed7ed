"""``python -m fleetpipe_dev.twilio``: the Twilio stand-in as a process of its own.

The demo and the load test run it this way; tests in this process use
:class:`~fleetpipe_dev.twilio.server.TwilioContractServer` directly.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Annotated

import typer

from fleetpipe_dev.twilio.server import TwilioContractServer

log = logging.getLogger(__name__)

PROG = "python -m fleetpipe_dev.twilio"
CREDENTIALS_HELP = (
    "The account SID and auth token come from FLEET_TWILIO__ACCOUNT_SID and "
    "FLEET_TWILIO__AUTH_TOKEN (or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN), as for the "
    "notification service; point the service's FLEET_TWILIO__API_BASE_URL at the URL it prints."
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(epilog=CREDENTIALS_HELP)
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 18080,
    settle_s: Annotated[
        float,
        typer.Option(
            "--settle-s",
            help="seconds a Message or Call reads 'queued' before 'delivered' / 'completed'",
        ),
    ] = 0.0,
) -> None:
    """A local server speaking Twilio's REST contract (Messages, Calls), until interrupted."""
    # Credentials come from the environment, like the service's: never from the command line,
    # where any user of the machine could read them.
    account_sid = os.environ.get("FLEET_TWILIO__ACCOUNT_SID") or os.environ.get(
        "TWILIO_ACCOUNT_SID"
    )
    auth_token = os.environ.get("FLEET_TWILIO__AUTH_TOKEN") or os.environ.get("TWILIO_AUTH_TOKEN")
    if not account_sid or not auth_token:
        typer.echo(
            f"{PROG}: error: set FLEET_TWILIO__ACCOUNT_SID and FLEET_TWILIO__AUTH_TOKEN", err=True
        )
        raise typer.Exit(2)
    server = TwilioContractServer(
        account_sid, auth_token, host=host, port=port, settle_s=settle_s
    ).start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log.info("Twilio contract server on %s (account %s)", server.url, server.account_sid)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main() -> None:
    app(prog_name=PROG)


if __name__ == "__main__":
    main()

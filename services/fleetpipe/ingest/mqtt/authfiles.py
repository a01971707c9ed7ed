"""``fleetpipe-mqtt-auth``: write Mosquitto's password and ACL files from the registry and
the fleet tokens (see ``credentials.py``). The chart's dev broker runs it as an init container;
with any Mosquitto, run it where the broker's files live and send the broker SIGHUP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from fleetpipe.core.errors import ConfigError
from fleetpipe.ingest.mqtt.credentials import broker_auth
from fleetpipe.registry import VehicleRegistry


def read_tokens(path: Path) -> dict[str, str]:
    """A tokens file as ingest reads it: ``{token: fleet}``, optionally under ``tokens``."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        # Not quoted back: the parser's message could echo a token.
        raise ConfigError(f"cannot read the tokens file {path} as YAML or JSON") from None
    if isinstance(doc, dict) and isinstance(doc.get("tokens"), dict):
        doc = doc["tokens"]
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a map of token to fleet id")
    return {str(token): str(fleet) for token, fleet in doc.items()}


def write_auth_files(
    registry: Annotated[Path, typer.Option(help="the vehicle registry (CSV or YAML)")],
    tokens: Annotated[Path, typer.Option(help="the fleets' tokens file, as ingest's")],
    bridge_password_file: Annotated[Path, typer.Option(help="the bridge's MQTT password")],
    out: Annotated[Path, typer.Option(help="folder for the files 'passwd' and 'acl'")],
) -> None:
    """Write the broker's password file and ACL file; say how many devices, never a secret."""
    try:
        vehicles = VehicleRegistry.load(registry)
        auth = broker_auth(
            vehicles,
            read_tokens(tokens),
            bridge_password=bridge_password_file.read_text().strip(),
        )
    except (ConfigError, OSError) as exc:
        print(f"fleetpipe-mqtt-auth: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("passwd", auth.password_file), ("acl", auth.acl_file)):
        tmp = out / f"{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o640)
        tmp.replace(out / name)
    print(f"{auth.devices} device accounts written to {out}; {len(auth.skipped)} vehicles left out")
    for vehicle_id, why in sorted(auth.skipped.items())[:20]:
        print(f"  {vehicle_id}: {why}")


def main() -> None:
    typer.run(write_auth_files)


if __name__ == "__main__":
    main()

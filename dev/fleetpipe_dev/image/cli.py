"""``fleetpipe dev image build | list``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

image_app = typer.Typer(
    help="The project image and the local cluster's images, built without a registry.",
    no_args_is_help=True,
)
console = Console()


def _repo() -> Path:
    """The checkout the Dockerfile is in: the current folder or one above it."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "Dockerfile").exists() and (folder / "helm" / "fleetpipe").is_dir():
            return folder
    raise typer.BadParameter("run it inside the FleetPipe checkout (no Dockerfile found)")


@image_app.command("build")
def image_build() -> None:
    """Build fleetpipe:TAG and, without a registry, its base and the chart's dev images."""
    from fleetpipe_dev.image.build import build_images
    from fleetpipe_dev.image.settings import ImageSettings

    start = time.monotonic()
    archives = build_images(ImageSettings(), _repo(), say=console.print)
    for archive in archives:
        console.print(f"  {archive.ref}  {archive.image_id[:19]}")
    console.print(f"[green]images built[/] in {time.monotonic() - start:.0f}s")


@image_app.command("list")
def image_list() -> None:
    """The images the last build saved for the local cluster."""
    from fleetpipe_dev.image.build import read_archives
    from fleetpipe_dev.image.settings import ImageSettings

    for archive in read_archives(ImageSettings()):
        console.print(f"{archive.ref}  {archive.image_id[:19]}  {archive.path}")

"""``make image``: the project image and, without a registry, every image the chart's dev
install needs, built from Debian's packages and the project's caches.

Without a registry (:class:`BaseSource.LOCAL`) the steps are, each skipped when its result is
already there:

1. a Debian base image from ``debootstrap --variant=minbase`` + ``docker import``;
2. a Python 3.11 base on it (Debian's python3), the ``PYTHON_IMAGE`` of the Dockerfile;
3. the project image from the repository's Dockerfile;
4. the chart's dev Kafka (the jars the local stack caches), PostgreSQL (Debian's postgresql-15),
   Jaeger (the Go-built binary) and the pod sandbox's pause image;
5. an archive of each image (``docker save``) that ``fleetpipe dev cluster`` imports into
   containerd, rewritten only when the image's id changed.

All of it runs on a private Docker engine that is stopped afterwards. With a registry, only the
project image is built, on the Docker engine the environment names, from the slim Python image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fleetpipe_dev.image.dockerd import PrivateDockerd, Say
from fleetpipe_dev.image.settings import BaseSource, ImageSettings
from fleetpipe_dev.stack.kafka import KAFKA_VERSION, default_cache, kafka_libs
from fleetpipe_dev.stack.procs import StartError, tail

DEBIAN_IMAGE = "fleetpipe-local/debian:bookworm"
PYTHON_IMAGE = "fleetpipe-local/python:3.11-bookworm"
PAUSE_IMAGE = "fleetpipe-local/pause:3.10"
# Where Debian (update-ca-certificates) takes the CAs a machine adds to its bundle.
HOST_EXTRA_CA = Path("/usr/local/share/ca-certificates")
# The Jaeger the project builds (scripts/build-go-tools.sh), not the chart's default tag.
JAEGER_VERSION = "2.12.0"


@dataclass(frozen=True)
class DevImage:
    """A chart dependency's image: a recipe and the cached files its build context needs."""

    ref: str
    recipe: str
    files: tuple[str, ...] = ()


DEV_IMAGES = {
    "kafka": DevImage(
        f"fleetpipe-local/kafka:{KAFKA_VERSION}",
        "kafka.Dockerfile",
        ("kafka-storage.sh", "kafka-server-start.sh", "log4j2.properties"),
    ),
    "postgresql": DevImage(
        "fleetpipe-local/postgresql:15", "postgresql.Dockerfile", ("postgres-entrypoint.sh",)
    ),
    "jaeger": DevImage(f"fleetpipe-local/jaeger:{JAEGER_VERSION}", "jaeger.Dockerfile"),
}


@dataclass(frozen=True)
class ImageArchive:
    """A built image saved for ``ctr images import``."""

    ref: str
    image_id: str
    path: Path


def project_ref(settings: ImageSettings) -> str:
    return f"fleetpipe:{settings.tag}"


def archives_index(settings: ImageSettings) -> Path:
    return settings.home / "archives" / "index.json"


def read_archives(settings: ImageSettings) -> list[ImageArchive]:
    """The archives the last build saved; an empty list when there was none."""
    index = archives_index(settings)
    if not index.exists():
        return []
    entries = json.loads(index.read_text())
    return [ImageArchive(e["ref"], e["id"], Path(e["path"])) for e in entries]


class ImageBuilder:
    """Runs the build steps against one Docker engine (``env`` names it)."""

    def __init__(self, settings: ImageSettings, repo: Path, *, say: Say = print) -> None:
        self.settings = settings
        self.repo = repo
        self.say = say
        self.env: Mapping[str, str] = {}

    # ---- docker --------------------------------------------------------------------------
    def _docker(self, *args: str, log: str, stdin: bytes | None = None) -> None:
        log_file = self.settings.home / "logs" / f"{log}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as out:
            result = subprocess.run(
                ["docker", *args],
                env=dict(self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                input=stdin,
                check=False,
            )
        if result.returncode != 0:
            raise StartError(f"docker {args[0]} failed; see {log_file}\n{tail(log_file)}")

    def image_id(self, ref: str) -> str | None:
        result = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
            env=dict(self.env),
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def _timed_build(
        self,
        ref: str,
        context: Path,
        *,
        dockerfile: Path | None = None,
        build_args: Mapping[str, str] | None = None,
    ) -> None:
        start = time.monotonic()
        self.say(f"building {ref} …")
        args = ["build", "--network", "host", "-t", ref]
        if dockerfile is not None:
            args += ["-f", str(dockerfile)]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        self._docker(*args, str(context), log=f"build-{ref.replace('/', '_').replace(':', '_')}")
        self.say(f"  {ref} ({time.monotonic() - start:.0f}s)")

    # ---- steps ---------------------------------------------------------------------------
    def debian_base(self) -> None:
        if self.image_id(DEBIAN_IMAGE):
            return
        if shutil.which("debootstrap") is None:
            raise StartError("debootstrap not found: install it with scripts/setup.sh image")
        start = time.monotonic()
        self.say(f"making {DEBIAN_IMAGE} with debootstrap (minbase {self.settings.debian_suite}) …")
        with tempfile.TemporaryDirectory(dir=self.settings.home) as tmp:
            rootfs = Path(tmp) / "rootfs"
            log_file = self.settings.home / "logs" / "debootstrap.log"
            with log_file.open("wb") as out:
                result = subprocess.run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        self.settings.debian_suite,
                        str(rootfs),
                        self.settings.debian_mirror,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if result.returncode != 0:
                raise StartError(f"debootstrap failed; see {log_file}\n{tail(log_file)}")
            for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (rootfs / folder).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            (rootfs / "etc/apt/sources.list").write_text(self._sources_list())
            tar = subprocess.run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                capture_output=True,
                check=True,
            )
            self._docker(
                "import",
                "--change",
                'CMD ["bash"]',
                "--change",
                "ENV LANG=C.UTF-8",
                "-",
                DEBIAN_IMAGE,
                log="import-debian",
                stdin=tar.stdout,
            )
        self.say(f"  {DEBIAN_IMAGE} ({time.monotonic() - start:.0f}s)")

    def _sources_list(self) -> str:
        mirror, suite = self.settings.debian_mirror, self.settings.debian_suite
        security = mirror.removesuffix("/debian") + "/debian-security"
        return (
            f"deb {mirror} {suite} main\n"
            f"deb {mirror} {suite}-updates main\n"
            f"deb {security} {suite}-security main\n"
        )

    def python_base(self) -> None:
        with self._recipe_context("python", ()) as context:
            extra_ca = context / "extra-ca"
            extra_ca.mkdir()
            for cert in sorted(HOST_EXTRA_CA.glob("*.crt")):
                shutil.copy2(cert, extra_ca / cert.name)
            self._timed_build(PYTHON_IMAGE, context, build_args={"DEBIAN_IMAGE": DEBIAN_IMAGE})

    def project(self, python_image: str) -> None:
        self._timed_build(
            project_ref(self.settings), self.repo, build_args={"PYTHON_IMAGE": python_image}
        )

    def dev_image(self, name: str) -> None:
        image = DEV_IMAGES[name]
        with self._recipe_context(image.recipe.removesuffix(".Dockerfile"), image.files) as ctx:
            if name == "kafka":
                shutil.copytree(kafka_libs(), ctx / "libs")
            if name == "jaeger":
                jaeger = default_cache() / "bin" / "jaeger"
                if not jaeger.exists():
                    raise StartError(f"{jaeger} missing: scripts/build-go-tools.sh jaeger")
                shutil.copy2(jaeger, ctx / "jaeger")
            self._timed_build(image.ref, ctx, build_args={"DEBIAN_IMAGE": DEBIAN_IMAGE})

    def pause(self) -> None:
        if self.image_id(PAUSE_IMAGE):
            return
        self.say(f"building {PAUSE_IMAGE} …")
        with tempfile.TemporaryDirectory(dir=self.settings.home) as tmp:
            source = Path(tmp) / "pause.c"
            source.write_text(_recipe_text("pause.c"))
            rootfs = Path(tmp) / "rootfs"
            rootfs.mkdir()
            subprocess.run(
                ["gcc", "-Os", "-static", "-o", str(rootfs / "pause"), str(source)],
                check=True,
                capture_output=True,
            )
            tar = subprocess.run(
                ["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True
            )
            self._docker(
                "import",
                "--change",
                'ENTRYPOINT ["/pause"]',
                "-",
                PAUSE_IMAGE,
                log="import-pause",
                stdin=tar.stdout,
            )

    def save(self, refs: list[str]) -> list[ImageArchive]:
        """Save each image once per image id; the index lists them for the cluster."""
        folder = self.settings.home / "archives"
        folder.mkdir(parents=True, exist_ok=True)
        known = {a.ref: a for a in read_archives(self.settings)}
        archives = []
        for ref in refs:
            image_id = self.image_id(ref)
            if image_id is None:
                raise StartError(f"{ref} was not built")
            path = folder / f"{ref.replace('/', '_').replace(':', '_')}.tar"
            previous = known.get(ref)
            if previous is None or previous.image_id != image_id or not path.exists():
                start = time.monotonic()
                self._docker("save", "-o", str(path), ref, log="save")
                self.say(f"saved {ref} ({time.monotonic() - start:.0f}s)")
            archives.append(ImageArchive(ref, image_id, path))
        entries = [{"ref": a.ref, "id": a.image_id, "path": str(a.path)} for a in archives]
        archives_index(self.settings).write_text(json.dumps(entries, indent=2))
        return archives

    def _recipe_context(self, name: str, files: tuple[str, ...]) -> _Context:
        return _Context(self.settings.home, name, (f"{name}.Dockerfile", *files))


class _Context:
    """A build context folder holding a recipe's Dockerfile and files, removed afterwards."""

    def __init__(self, home: Path, name: str, files: tuple[str, ...]) -> None:
        self.folder = home / "contexts" / name
        self.files = files

    def __enter__(self) -> Path:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        for file in self.files:
            target = self.folder / ("Dockerfile" if file.endswith(".Dockerfile") else file)
            target.write_text(_recipe_text(file))
            if file.endswith(".sh"):
                target.chmod(0o755)
        return self.folder

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _recipe_text(name: str) -> str:
    return (resources.files("fleetpipe_dev.image") / "recipes" / name).read_text()


def build_images(settings: ImageSettings, repo: Path, *, say: Say = print) -> list[ImageArchive]:
    """Build what the resolved base source calls for; returns the saved archives."""
    builder = ImageBuilder(settings, repo, say=say)
    source = settings.resolved_base()
    if source is BaseSource.REGISTRY:
        say(f"base image: {settings.registry_image} (registry)")
        builder.env = dict(os.environ)
        builder.project(settings.registry_image)
        return builder.save([project_ref(settings)])
    say("base image: made here from Debian's packages (no registry)")
    dockerd = PrivateDockerd(settings.home)
    with dockerd.running(say=say):
        builder.env = dockerd.env()
        builder.debian_base()
        builder.python_base()
        builder.project(PYTHON_IMAGE)
        for name in DEV_IMAGES:
            builder.dev_image(name)
        builder.pause()
        refs = [project_ref(settings), *(i.ref for i in DEV_IMAGES.values()), PAUSE_IMAGE]
        return builder.save(refs)

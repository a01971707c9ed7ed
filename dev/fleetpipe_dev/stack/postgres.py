"""A throw-away PostgreSQL cluster from Debian's packages, made with initdb, on loopback."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fleetpipe_dev.stack.pg_roles import ServiceLogins, write_hba
from fleetpipe_dev.stack.procs import StartError
from fleetpipe_dev.stack.server import LocalServer

DB_USER = "fleetpipe"
DB_NAME = "fleetpipe"


def pg_bindir() -> Path:
    """The server binaries: FLEETPIPE_PG_BIN, else the newest /usr/lib/postgresql/*/bin."""
    explicit = os.environ.get("FLEETPIPE_PG_BIN")
    if explicit:
        return Path(explicit)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise StartError(
        "PostgreSQL server binaries not found: install Debian's postgresql-15 "
        "(apt-get install postgresql-15) or set FLEETPIPE_PG_BIN"
    )


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except (ValueError, IndexError):
        return 0


def server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root, run it as the packages' ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StartError(
            "running as root needs the 'postgres' user from Debian's packages"
        ) from exc
    return "postgres"


@dataclass
class PostgresServer(LocalServer):
    port: int

    log_name = "postgres.log"
    # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
    stop_signal = signal.SIGINT

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def marker(self) -> str:
        return str(self.data_dir)

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def _prepare_home(self, user: str | None) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.home, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # The server user must be able to reach its folder through every parent.
            parent = self.home.parent
            while parent != parent.parent:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise StartError(
                        f"{parent} is not searchable by the '{user}' user; put the PostgreSQL "
                        "folder elsewhere (for example under /tmp)"
                    )
                parent = parent.parent

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        user = server_user()
        self._prepare_home(user)
        result = subprocess.run(
            [
                str(pg_bindir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                DB_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            check=False,
            user=user,
        )
        if result.returncode != 0:
            raise StartError(f"initdb failed:\n{result.stdout}{result.stderr}")

    @property
    def logins(self) -> ServiceLogins:
        """The services' roles and their passwords (made at start)."""
        return ServiceLogins(self.home, self.port, DB_NAME)

    def start(self, *, timeout: float = 60.0) -> int:
        self.init()
        user = server_user()
        self._prepare_home(user)
        write_hba(self.data_dir, owner=DB_USER, server_user=user)
        if user is not None and self.log_file.exists():
            entry = pwd.getpwnam(user)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        pid = self._launch(
            [
                str(pg_bindir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                # The hot store's primary-key index takes about one leaf page per vehicle being
                # written (~220 MB at 28,000 vehicles): with 256 MB of buffers the COPYs had to
                # evict and write back pages themselves, and over 5 minutes neither 25,000 nor
                # 28,000 events/s kept up (the storage writer 610,000 events behind at 28,000);
                # with 2 GB 25,000 kept up and 28,000 stayed within 240,000
                # (benchmarks/reports/pipeline-gc-linger.md). Pages are taken as they are used:
                # a small fleet's server stays small.
                "-c",
                "shared_buffers=2GB",
                "-c",
                "max_wal_size=4GB",
                "-c",
                "checkpoint_timeout=15min",
                "-c",
                "wal_compression=on",
                "-c",
                "log_min_messages=warning",
            ],
            ready=self._accepting,
            what=f"PostgreSQL on 127.0.0.1:{self.port}",
            timeout=timeout,
            user=user,
        )
        self._ensure_database()
        self.logins.ensure(self.dsn)
        return pid

    def _accepting(self) -> bool:
        result = subprocess.run(
            [str(pg_bindir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0

    def _ensure_database(self) -> None:
        import psycopg

        admin = f"postgresql://{DB_USER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

"""A PostgreSQL primary and its streaming replica of a test's own: initdb into a temporary
folder, pg_basebackup of it, each started on a port of its own as the ``postgres`` user."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from data_feeds.embedded_redis import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def binary(name: str) -> str | None:
    for folder in BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def unavailable() -> str | None:
    """Why a replica cannot be made here, or None."""
    missing = [name for name in ("initdb", "pg_ctl", "pg_basebackup") if binary(name) is None]
    if missing:
        return f"PostgreSQL server binaries missing: {', '.join(missing)}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user to run the servers as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "the servers run as the postgres user: the tests need root or postgres"
    return None


def _as_postgres(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    prefix = [] if pwd.getpwuid(os.geteuid()).pw_name == "postgres" else ["runuser", "-u", "postgres", "--"]
    result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


class Server:
    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        _as_postgres(binary("pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", binary("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"]
                       if os.geteuid() == 0 else [binary("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)


def _settings(data: Path, port: int, extra: str = "") -> None:
    with (data / "postgresql.auto.conf").open("a") as handle:
        handle.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{data}'\n{extra}")


def start_pair(folder: Path) -> tuple[Server, Server]:
    """A primary (wal_level replica, replication allowed from loopback) and a hot-standby
    replica streaming from it, both running; stop both with ``stop()``."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    primary = Server(folder / "primary", free_port())
    replica = Server(folder / "replica", free_port())
    for server in (primary, replica):
        server.folder.mkdir()
        if os.geteuid() == 0:
            shutil.chown(server.folder, "postgres", "postgres")
    _as_postgres(binary("initdb"), "-D", str(primary.folder / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
    _settings(primary.folder / "data", primary.port, "wal_level = replica\nmax_wal_senders = 4\nfsync = off\n")
    with (primary.folder / "data" / "pg_hba.conf").open("a") as handle:
        handle.write("\nhost replication all 127.0.0.1/32 trust\n")
    primary.start()
    _as_postgres(binary("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(replica.folder / "data"), "-R", "-X", "stream")
    _settings(replica.folder / "data", replica.port, "hot_standby = on\n")
    replica.start()
    return primary, replica


def wait_for(condition, timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

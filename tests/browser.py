"""Browser-test support: run the real server in a subprocess and drive Debian's Chromium."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from data_feeds.embedded_redis import free_port

PROJECT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GRIDOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@contextmanager
def running_server(env_overrides: dict, command: str = "serve", log_path: Path | None = None, timeout_s: float = 60):
    """``python app.py COMMAND`` on a free port; yields its base URL, stops it afterwards."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "GRIDOPS_AUTH": "off", **env_overrides}
    log = open(log_path or os.devnull, "w")
    process = subprocess.Popen([sys.executable, "app.py", command], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
            try:
                with urlopen(f"{base}/healthz", timeout=2):
                    break
            except (URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not answer within {timeout_s} s; see {log_path}")
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def chromium():
    """A headless Chromium browser (Playwright driving the system binary)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def is_local(url: str) -> bool:
    """Whether a request URL stays on this machine (data: and blob: URLs count as local)."""
    if url.startswith(("data:", "blob:", "about:")):
        return True
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0] if "://" in url else ""
    return host in ("127.0.0.1", "localhost", "[::1]", "::1")

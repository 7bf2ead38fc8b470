"""Browser-test support: run the real server in a subprocess and drive Debian's Chromium."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
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
def running_server(env_overrides: dict, command: str = "serve", log_path: Path | None = None, timeout_s: float = 60, port: int | None = None,
                   gunicorn: tuple[str, ...] | None = None):
    """``python app.py COMMAND`` on ``port`` (default: a free one), or with ``gunicorn`` (its
    options) ``wsgi:server`` under gunicorn; yields its base URL, stops it afterwards."""
    port = port or free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "GRIDOPS_AUTH": "off", **env_overrides}
    argv = ["-m", "gunicorn", *gunicorn, "-b", f"127.0.0.1:{port}", "wsgi:server"] if gunicorn is not None else ["app.py", command]
    log = open(log_path or os.devnull, "a")
    process = subprocess.Popen([sys.executable, *argv], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
                    raise RuntimeError(f"server did not answer within {timeout_s} s; see {log_path}") from None
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
def chromium(extra_args: tuple[str, ...] = ()):
    """A headless Chromium browser (Playwright driving the system binary)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
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


@contextmanager
def app_process(command: list[str], env_overrides: dict, log_path: Path | None = None):
    """``python app.py COMMAND...`` (e.g. the feed consumer) as a child process; stopped afterwards."""
    env = {**os.environ, "GRIDOPS_AUTH": "off", **env_overrides}
    log = open(log_path or os.devnull, "a")
    process = subprocess.Popen([sys.executable, "app.py", *command], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process)
        log.close()


def stop_process(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The Leaflet map behind a dash-leaflet Map: react-leaflet keeps it in a hook of the
# MapContainer component, reachable from the container element's React fiber. Stored as
# window.__leafletMaps[selector] so tests can set the view (zoom in to see single pins).
FIND_LEAFLET_MAP_JS = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const key = Object.keys(el).find(k => k.startsWith('__reactFiber'));
  let fiber = key ? el[key] : null;
  for (let depth = 0; fiber && depth < 40; depth++, fiber = fiber.return) {
    for (let hook = fiber.memoizedState, n = 0; hook && typeof hook === 'object' && n < 60; hook = hook.next, n++) {
      const value = hook.memoizedState;
      if (value && value.map && typeof value.map.setView === 'function') {
        window.__leafletMaps = Object.assign({}, window.__leafletMaps, {[selector]: value.map});
        return true;
      }
    }
  }
  return false;
}"""

# A component's current prop as the Dash renderer holds it (after every callback, server or clientside).
DASH_PROP_JS = """([id, prop]) => {
  const state = window.store && window.store.getState();
  const path = state && state.paths && state.paths.strs && state.paths.strs[id];
  if (!path) return null;
  let node = state.layout;
  for (const key of path) { node = node && node[key]; }
  return node && node.props ? node.props[prop] : null;
}"""


def dash_prop(page, component_id: str, prop: str):
    """The renderer's current value of ``component_id.prop`` (None while the component is not rendered)."""
    return page.evaluate(DASH_PROP_JS, [component_id, prop])


def sse_messages(url: str, into: list, stop: threading.Event) -> None:
    """Read a server-sent-events stream line by line into ``into`` until ``stop``."""
    try:
        with urlopen(url, timeout=60) as response:
            for line in response:
                if stop.is_set():
                    return
                text = line.decode().strip()
                if text.startswith("data: ") and text[6:].startswith("{"):
                    into.append(json.loads(text[6:]))
    except OSError:
        pass

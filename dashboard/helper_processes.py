"""The demo's helper processes (feed consumer, simulator), kept running beside the dashboard.

Each runs as its own ``python app.py COMMAND`` so that a crash in one does not take the
dashboard down; a watchdog restarts any that exits, and all stop with the dashboard.
"""
from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from dashboard.settings import PROJECT_DIR, Settings
from data_feeds.parent_death import stop_with_parent

log = logging.getLogger(__name__)

RESTART_DELAY_S = 3.0


class Children:
    def __init__(self, commands: dict[str, list[str]], env: dict, log_dir: Path):
        self.commands = commands
        self.env = env
        self.log_dir = Path(log_dir)
        self.processes: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.commands:
            self._spawn(name)
        threading.Thread(target=self._watch, name="children-watchdog", daemon=True).start()
        atexit.register(self.stop)

    def _spawn(self, name: str) -> None:
        output = open(self.log_dir / f"{name}.log", "a", encoding="utf-8")
        self.processes[name] = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "app.py"), *self.commands[name]],
            cwd=PROJECT_DIR, env=self.env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=stop_with_parent,
        )
        log.info("started %s (pid %d), log %s", name, self.processes[name].pid, self.log_dir / f"{name}.log")

    def _watch(self) -> None:
        while not self._stop.wait(RESTART_DELAY_S):
            for name, process in list(self.processes.items()):
                if process.poll() is not None and not self._stop.is_set():
                    log.warning("%s exited with %s; restarting", name, process.returncode)
                    self._spawn(name)

    def stop(self) -> None:
        self._stop.set()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def demo_children(settings: Settings, redis_url: str | None) -> Children:
    """The feed consumer, and the simulator unless GRIDOPS_SIMULATE=0, its patrol rounds in this
    machine's daytime unless GRIDOPS_DEMO_DAYTIME=0 (a demo tried abroad shows workers on patrol)."""
    commands = {"ingest": ["ingest", "--consumer", "demo-ingest"]}
    if settings.simulate:
        commands["simulate"] = ["simulate"] + (["--daytime-rounds"] if settings.demo_daytime else [])
    env = {**os.environ, "DATABASE_URL": settings.database_url, "PYTHONUNBUFFERED": "1"}
    if redis_url:  # else the children find Redis through REDIS_SENTINELS, like the parent
        env["REDIS_URL"] = redis_url
    return Children(commands, env, settings.var_dir / "logs")

"""One reader of the change stream per process, fanning out to every open change stream.

Each open wall used to read the Redis change stream itself: a connection and a blocking
read per wall. Here one reader per process does, and counts *batches* (everything that
arrived together, after a short wait for more); every open stream waits on the hub for the
next batch or for Redis to go down or come back. A waiting stream costs no connection and,
under gunicorn's gevent workers (README "Serving"), no thread: thousands stay open per
process.

The reader starts with the first stream that waits, in the process that serves it (a hub
made before a fork starts a reader of its own in each worker), and stops after a while
without streams, so an idle application holds no connection.
"""
from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable

import redis

READ_BLOCK_S = 5.0  # one blocking read at most this long: how soon the reader notices it is idle
COALESCE_S = 0.05  # wait this long after a change for more before signalling one batch
# At most a batch a second: a busy feed commits several batches a second (GPS above all), and
# every batch makes every open wall pull; a second is as fast as a wall's eye needs.
MIN_BATCH_INTERVAL_S = 1.0
IDLE_S = 30.0  # the reader stops when no stream has waited for this long


class ChangeHub:
    """Batches of the change stream ``stream``, read through connections from ``connect``
    (given the connection's client name: ``CLIENT LIST`` shows one reader per process)."""

    def __init__(self, connect: Callable[[str], redis.Redis], stream: str) -> None:
        self._connect = connect
        self.name = f"gridops-changes-{os.getpid()}-{secrets.token_hex(3)}"
        self._stream = stream
        self._condition = threading.Condition()
        self._reader: threading.Thread | None = None
        self._pid = os.getpid()
        self._batch = 0
        self._up = True
        self._last_wait = time.monotonic()

    def wait(self, seen_batch: int, seen_up: bool, timeout_s: float) -> tuple[int, bool]:
        """The hub's (batch, Redis up) once either differs from what the caller has seen, or
        after ``timeout_s`` as it is then."""
        with self._condition:
            self._last_wait = time.monotonic()
            self._start_reader()
            self._condition.wait_for(lambda: self._batch != seen_batch or self._up != seen_up, timeout_s)
            return self._batch, self._up

    def state(self) -> tuple[int, bool]:
        with self._condition:
            return self._batch, self._up

    def _start_reader(self) -> None:
        if os.getpid() != self._pid:  # forked: the parent's reader did not come along
            self._pid, self._reader = os.getpid(), None
            self.name = f"gridops-changes-{os.getpid()}-{secrets.token_hex(3)}"
        if self._reader is None:
            self._reader = threading.Thread(target=self._read, name="gridops-change-hub", daemon=True)
            self._reader.start()

    def _publish(self, batch: int | None = None, up: bool = True) -> None:
        with self._condition:
            if batch is not None:
                self._batch = batch
            if batch is not None or up != self._up:
                self._up = up
                self._condition.notify_all()

    def _idle(self) -> bool:
        """Whether no stream has waited for IDLE_S; the reader then forgets itself, under the
        lock, so that the next stream starts a new one."""
        with self._condition:
            if time.monotonic() - self._last_wait < IDLE_S:
                return False
            self._reader = None
            return True

    def _read(self) -> None:
        connection: redis.Redis | None = None
        last_id = "$"  # from now on; afterwards the newest entry seen, so no entry falls between reads
        last_batch = 0.0
        try:
            while not self._idle():
                try:
                    if connection is None:
                        connection = self._connect(self.name)
                    reply = connection.xread({self._stream: last_id}, count=1000, block=int(READ_BLOCK_S * 1000))
                    if reply:
                        time.sleep(max(COALESCE_S, MIN_BATCH_INTERVAL_S - (time.monotonic() - last_batch)))
                        newest = connection.xrevrange(self._stream, count=1)  # one batch for everything up to now
                        last_id = newest[0][0] if newest else reply[0][1][-1][0]
                        self._publish(self._batch + 1)
                        last_batch = time.monotonic()
                    else:
                        self._publish(up=True)
                except redis.RedisError:  # down, or failing over: say so and try again (a new master)
                    self._publish(up=False)
                    if connection is not None:
                        connection.close()
                    connection = None
                    time.sleep(1.0)
        finally:
            if connection is not None:
                connection.close()

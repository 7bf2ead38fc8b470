"""Every Redis key name, built in one place from the configured prefix."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "gridops:"

    # ---- the feed contract (README, "The feeds")
    @property
    def case_events(self) -> str:
        return f"{self.prefix}case-events"

    @property
    def patrol_gps(self) -> str:
        return f"{self.prefix}patrol-gps"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}dead-letter"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    # ---- live state for the screens
    @property
    def open_cases(self) -> str:
        """Hash: case id → JSON of an open case with its current stage deadline."""
        return f"{self.prefix}live:open"

    @property
    def changes(self) -> str:
        """Stream (capped): every applied change, for screens to be pushed instead of polling."""
        return f"{self.prefix}live:changes"

    @property
    def open_versions(self) -> str:
        """Hash: case id → ``case_version`` of the open case's record in ``open_cases``."""
        return f"{self.prefix}live:open-versions"

    @property
    def closed_recently(self) -> str:
        """Sorted set: case id → epoch seconds it left the open cases (a late write cannot bring it back)."""
        return f"{self.prefix}live:closed"

    @property
    def workers(self) -> str:
        """Hash: worker → JSON of the last position, speed, heading, time and grid."""
        return f"{self.prefix}live:workers"

    @property
    def acknowledged(self) -> str:
        """Sorted set: attention key (``CASEID|reason``) → epoch seconds an operator acknowledged it."""
        return f"{self.prefix}live:acknowledged"

    @property
    def workers_geo(self) -> str:
        """Geo set (Redis GEO): worker → last position, the spatial index of "who is nearest"."""
        return f"{self.prefix}live:workers-geo"

    @property
    def workers_seen(self) -> str:
        """Sorted set: worker → epoch seconds of the last ping (online = seen recently)."""
        return f"{self.prefix}live:seen"

    def trail(self, worker: str) -> str:
        """List: the worker's latest positions, newest first."""
        return f"{self.prefix}live:trail:{worker}"

    @property
    def alert_state(self) -> str:
        """Hash: case id → the stage state last alerted (stage:due_soon|overdue|escalated)."""
        return f"{self.prefix}live:alert-state"

    @property
    def last_message(self) -> str:
        """String: epoch milliseconds when the consumer last received a message."""
        return f"{self.prefix}live:last-message"

    # ---- operations
    @property
    def feed_metrics(self) -> str:
        return f"{self.prefix}metrics:feed"

    @property
    def consumers(self) -> str:
        """Sorted set: feed consumer name → epoch seconds it last reported how it is."""
        return f"{self.prefix}ingest:consumers"

    def consumer_status(self, consumer: str) -> str:
        """Hash (expires when the consumer stops reporting): state ok|degraded, reason, detail, since, seen."""
        return f"{self.prefix}ingest:consumer:{consumer}"

    def finished_batch(self, token: str) -> str:
        """String: set in the transaction that finished a batch, so that a retry does not finish it twice."""
        return f"{self.prefix}ingest:finished:{token}"

    @property
    def http_latency(self) -> str:
        return f"{self.prefix}metrics:http"

    @property
    def watcher_lock(self) -> str:
        return f"{self.prefix}lock:watcher"

    @property
    def cache_prefix(self) -> str:
        return f"{self.prefix}cache:"

    # ---- sign-in
    def session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def user_sessions(self, user_id: int) -> str:
        """Set of the session ids of a user (to end them all when the user is disabled or their password changes)."""
        return f"{self.prefix}user-sessions:{user_id}"

    def login_failures(self, name: str) -> str:
        """Recent failed sign-ins for a user name, from any address (they slow its sign-in down)."""
        return f"{self.prefix}login-failures:{name}"
    def stream_slots(self, owner: str) -> str:
        """Sorted set: the open change streams of one caller (token or user) → when each slot lapses."""
        return f"{self.prefix}streams:{owner}"

    @property
    def rate_limit_prefix(self) -> str:
        return f"{self.prefix}ratelimit"

"""Every Redis key name, built in one place from the configured prefix."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "gridops:"

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

    @property
    def cache_prefix(self) -> str:
        return f"{self.prefix}cache:"

    @property
    def http_latency(self) -> str:
        return f"{self.prefix}metrics:http"

"""The one place that reads the wall clock; everything else takes ``now`` as a parameter."""
from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)

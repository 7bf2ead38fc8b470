"""The grid database schema (SQLAlchemy Core), portable across SQLite, PostgreSQL and MySQL.

Times are stored as naive UTC ``DateTime``; local days (GRIDOPS_TZ) are computed in Python.
Grids carry a materialised ``path`` ("/district/town/community/grid/") so that any
subtree is one indexed ``LIKE 'prefix%'``.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)

from gridrules.indicators import CLOSE_SECONDS
from gridrules.rollups import COUNTERS as ROLLUP_COUNTERS

metadata = MetaData()

# SQLite autoincrements only an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

grids = Table(
    "grids",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("parent", String(32), ForeignKey("grids.code"), nullable=True, index=True),
    Column("path", String(400), nullable=False),
    Column("geometry", Text, nullable=True),  # GeoJSON geometry in the map datum (GCJ-02)
    Column("centroid_lat", Float, nullable=True),
    Column("centroid_lon", Float, nullable=True),
    Column("households", Integer, nullable=True),
    Column("population", Integer, nullable=True),
    Index("ix_grids_path", "path"),
    Index("ix_grids_level", "level"),
)

departments = Table(
    "departments",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("name_en", String(200), nullable=True),
)

categories = Table(
    "categories",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("name_en", String(200), nullable=True),
    Column("parent", String(32), ForeignKey("categories.code"), nullable=True, index=True),
    Column("level", SmallInteger, nullable=False),
    Column("dept", String(32), ForeignKey("departments.code"), nullable=True),
    Column("grade", String(1), nullable=True),
    Column("register_limit", String(16), nullable=True),
    Column("dispatch_limit", String(16), nullable=True),
    Column("handle_limit", String(16), nullable=True),
    Column("verify_limit", String(16), nullable=True),
    Column("calendar", String(16), nullable=True),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("grid", String(32), ForeignKey("grids.code"), nullable=False, index=True),
    Column("role", String(16), nullable=False),  # head 网格长 | worker 网格员 | member (the "N")
    Column("phone", String(32), nullable=True),
)

cases = Table(
    "cases",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("grid", String(32), ForeignKey("grids.code"), nullable=False),
    Column("category", String(32), ForeignKey("categories.code"), nullable=False),
    Column("dept", String(32), ForeignKey("departments.code"), nullable=True, index=True),
    Column("grade", String(1), nullable=False),
    Column("source", String(16), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("description", Text, nullable=True),
    Column("reporter", String(80), nullable=True),
    Column("contact", String(64), nullable=True),
    Column("worker", String(32), nullable=True, index=True),
    Column("reported_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("registered_at", DateTime, nullable=True),
    Column("invalid_at", DateTime, nullable=True),
    Column("dispatched_at", DateTime, nullable=True),
    Column("last_dispatched_at", DateTime, nullable=True),
    Column("handled_at", DateTime, nullable=True),
    Column("closed_at", DateTime, nullable=True),
    Column("evaluated_at", DateTime, nullable=True),
    Column("first_returned_at", DateTime, nullable=True),
    Column("returned_at", DateTime, nullable=True),
    Column("register_deadline", DateTime, nullable=True),
    Column("dispatch_deadline", DateTime, nullable=True),
    Column("deadline", DateTime, nullable=True),
    Column("verify_deadline", DateTime, nullable=True),
    Column("stage", String(16), nullable=True),
    Column("stage_started_at", DateTime, nullable=True),
    Column("stage_deadline", DateTime, nullable=True),
    Column("stage_due_soon_at", DateTime, nullable=True),
    Column("rework_count", Integer, nullable=False, default=0),
    Column("self_handled", Boolean, nullable=False, default=False),
    Column("satisfaction", String(16), nullable=True),
    Column("is_open", Boolean, nullable=False, default=True),
    # The centre's interventions (migration 0002): first 督办, and how often each happened.
    Column("supervised_at", DateTime, nullable=True),
    Column("supervise_count", Integer, nullable=False, default=0, server_default="0"),
    Column("redispatch_count", Integer, nullable=False, default=0, server_default="0"),
    Column("decline_count", Integer, nullable=False, default=0, server_default="0"),
    Column("extension_count", Integer, nullable=False, default=0, server_default="0"),
    # (updated_at, reported_at): the window query filters on both; with one index each
    # the planner may pick reported_at and scan every older case.
    Index("ix_cases_updated_reported", "updated_at", "reported_at"),
    Index("ix_cases_open", "is_open", "updated_at"),
    # An area's cases: one index seek per grid straight to the window, or to its open cases.
    Index("ix_cases_grid_updated", "grid", "updated_at"),
    Index("ix_cases_grid_open", "grid", "is_open", "updated_at"),
)

def case_lifetime(c):
    """A case's span from its report to its last change, as a PostgreSQL range: a GiST index on
    it finds the cases that overlap a past moment (reported before it, changed after it) without
    reading every case changed since. least/greatest keep the range valid whatever the clocks said."""
    return func.tsrange(func.least(c.reported_at, c.updated_at), func.greatest(c.reported_at, c.updated_at), literal_column("'[]'"))


# _table: SQLAlchemy finds an index's table only from columns at the top of its expression.
Index("ix_cases_lifetime", case_lifetime(cases.c), postgresql_using="gist", _table=cases).ddl_if(dialect="postgresql")


case_events = Table(
    "case_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False),  # the idempotency record
    Column("case_id", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("ts", DateTime, nullable=False),
    Column("actor", String(80), nullable=False, default=""),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("dept", String(32), nullable=True),
    Column("detail", Text, nullable=True),  # JSON of the remaining fields
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("event_id", name="uq_case_events_event_id"),
    Index("ix_case_events_ts", "ts"),
)

# What the cases did per local day or month (``period_kind`` "D" or "M"), per area (their
# grid and every area above it), per grouping and key: the counts of gridrules.rollups, kept
# by the feed consumer in the same transaction as the cases (data_feeds.rollups). ``dept`` is
# "" for none, and so is every dimension a grouping sums away.
case_rollups = Table(
    "case_rollups",
    metadata,
    Column("area", String(32), primary_key=True),
    Column("grouping", String(8), primary_key=True),
    Column("period_kind", String(1), primary_key=True),
    Column("period", Date, primary_key=True),
    Column("category", String(32), primary_key=True),
    Column("dept", String(32), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("grade", String(1), primary_key=True),
    Column("is_dispatched", Boolean, primary_key=True),
    *(Column(name, Integer, nullable=False, default=0) for name in ROLLUP_COUNTERS),
    Column(CLOSE_SECONDS, Float, nullable=False, default=0.0),
)

patrol_points = Table(
    "patrol_points",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("worker", String(32), nullable=False),
    Column("ts", DateTime, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("grid", String(32), nullable=True),
    Column("speed", Float, nullable=True),
    Column("heading", Float, nullable=True),
    Index("ix_patrol_points_worker_ts", "worker", "ts"),
    Index("ix_patrol_points_ts", "ts"),
)

# Patrol per local day, worker and grid: what the patrol indicators read.
patrol_days = Table(
    "patrol_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("worker", String(32), primary_key=True),
    Column("grid", String(32), primary_key=True),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("meters", Float, nullable=False, default=0.0),
    Column("points", Integer, nullable=False, default=0),
    Column("rounds", Integer, nullable=False, default=0),
)

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("scope", String(32), ForeignKey("grids.code"), nullable=True),
    Column("dept", String(32), ForeignKey("departments.code"), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("ts", DateTime, nullable=False, index=True),
    Column("actor", String(80), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", String(200), nullable=True),
    Column("detail", Text, nullable=True),
    Column("remote_addr", String(64), nullable=True),
)

# Events that arrived before the transition they follow (a dispatch before its register,
# or any event before its case's report): held here, in the same transaction as everything
# else, until the case catches up or they time out into the dead-letter stream.
parked_events = Table(
    "parked_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("ts", DateTime, nullable=False),
    Column("fields", Text, nullable=False),  # the original message as JSON
    Column("source_stream", String(200), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("received_at", DateTime, nullable=False, index=True),
)

# The last GPS point of each worker as committed, so that a replayed or redelivered ping
# adds no time or distance twice.
patrol_state = Table(
    "patrol_state",
    metadata,
    Column("worker", String(32), primary_key=True),
    Column("ts", DateTime, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("grid", String(32), nullable=True),
    Column("odometer", Float, nullable=False, default=0.0),  # metres walked, for thinning by distance
)

# What each committed batch of the feed came to, per message id (JSON), until its Redis
# half (dead letters, acknowledgement, counters) is known to have landed: whoever reads a
# committed but unacknowledged message again finishes it from here instead of counting it
# a second time. A consumer deletes its rows once finished; leftovers of crashes are
# pruned after a day.
ingest_ledger = Table(
    "ingest_ledger",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("stream", String(200), nullable=False),
    Column("consumer", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("outcome", Text, nullable=False),
)

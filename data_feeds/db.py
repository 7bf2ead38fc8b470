"""The grid database connection: engine creation, schema creation and reachability checks."""
from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from data_feeds import migrations, schema

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_OPTION = "gridops_write_lock"
SQLITE_PROGRESS_STEPS = 10_000  # virtual-machine steps between two looks at the clock (a few ms)
POSTGRESQL_QUERY_CANCELED = "57014"  # SQLSTATE of a statement stopped by statement_timeout
DEADLINE_KEY = "gridops_deadline"  # in a pooled connection's info: when its current statement must stop


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message names the URL (without password)."""


class QueryTimeout(RuntimeError):
    """A statement ran past the engine's statement timeout and was stopped (the dashboard
    answers 503 or shows a notice; the connection stays usable)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the query took longer than {seconds:g} s (the statement timeout); narrow the window or the area and try again")


def make_engine(database_url: str, writer: bool = False, statement_timeout_s: float | None = None, lock_wait_s: float | None = None) -> Engine:
    """A pooled engine; SQLite gets WAL and foreign keys, PostgreSQL the psycopg 3 driver.

    ``writer``: on SQLite, transactions take the write lock when they begin (BEGIN
    IMMEDIATE), so that concurrent consumers reading state and then writing it serialise
    instead of failing at the upgrade. One connection asks the same of any engine with the
    execution option ``WRITE_LOCK_OPTION``.

    ``statement_timeout_s``: every statement stops after this long and raises QueryTimeout
    (PostgreSQL's ``statement_timeout``; on SQLite a progress handler with a deadline). The
    dashboard sets it, so that no request holds a worker; the consumer and the importers,
    whose batches may rightly take long, leave it None.

    ``lock_wait_s``: how long a SQLite statement waits for another writer's lock before
    "database is locked" (default SQLITE_BUSY_TIMEOUT_MS); the consumer waits less than it
    lets its status go stale, so that a long lock shows as an outage, not as a dead consumer.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise DatabaseUnavailable(f"DATABASE_URL {database_url!r} is not a database URL (e.g. sqlite:///var/gridops.db)") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername.startswith("sqlite"):
        engine = _sqlite_engine(url, writer, statement_timeout_s, lock_wait_s)
    elif url.drivername.startswith("postgresql"):
        engine = create_engine(_with_statement_timeout(url, statement_timeout_s), pool_pre_ping=True, pool_size=5, max_overflow=10,
                               connect_args={"connect_timeout": 5})
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if statement_timeout_s is not None:
        _raise_query_timeouts(engine, statement_timeout_s)
    return engine


def _sqlite_engine(url, writer: bool, statement_timeout_s: float | None, lock_wait_s: float | None = None) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # Waiting for another writer's lock is part of a statement's time, so it gets no longer.
    busy_s = min([SQLITE_BUSY_TIMEOUT_MS / 1000, *(limit for limit in (statement_timeout_s, lock_wait_s) if limit is not None)])
    engine = create_engine(url, connect_args={"timeout": busy_s})
    event.listen(engine, "connect", _sqlite_pragmas)
    # pysqlite's own transaction handling begins late (at the first write); take it over.
    def begin(connection):
        immediate = writer or connection.get_execution_options().get(WRITE_LOCK_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine, "begin", begin)
    if statement_timeout_s is not None:
        _sqlite_deadlines(engine, statement_timeout_s)
    return engine


def _with_statement_timeout(url, statement_timeout_s: float | None):
    """The URL with ``-c statement_timeout=…`` added to libpq's ``options`` (any options the
    URL carries, such as a search_path, are kept)."""
    if statement_timeout_s is None:
        return url
    setting = f"-c statement_timeout={max(1, round(statement_timeout_s * 1000))}"
    options = url.query.get("options")
    return url.update_query_dict({"options": f"{options} {setting}" if options else setting})


def _sqlite_deadlines(engine: Engine, statement_timeout_s: float) -> None:
    """Stop any SQLite statement that runs past the timeout, fetching included.

    Each statement sets a deadline in its pooled connection's ``info``; a progress handler
    looks at it every few thousand steps and interrupts the statement once it has passed.
    Commit, rollback and the return to the pool clear it, so a deadline never outlives the
    statement that set it.
    """
    def connect(dbapi_connection, record):
        info = record.info
        info[DEADLINE_KEY] = None
        dbapi_connection.set_progress_handler(lambda: 1 if info[DEADLINE_KEY] is not None and time.monotonic() > info[DEADLINE_KEY] else 0,
                                              SQLITE_PROGRESS_STEPS)

    def start(connection, *_args):
        connection.info[DEADLINE_KEY] = time.monotonic() + statement_timeout_s

    def clear(connection, *_args):
        connection.info[DEADLINE_KEY] = None

    def clear_record(_dbapi_connection, record):
        record.info[DEADLINE_KEY] = None

    event.listen(engine, "connect", connect)
    event.listen(engine, "before_cursor_execute", start)
    event.listen(engine, "commit", clear)
    event.listen(engine, "rollback", clear)
    event.listen(engine.pool, "checkin", clear_record)


def _raise_query_timeouts(engine: Engine, statement_timeout_s: float) -> None:
    """A statement stopped by the timeout raises QueryTimeout instead of the driver's error."""
    def handle_error(context):
        error = context.original_exception
        stopped = (
            getattr(error, "sqlstate", None) == POSTGRESQL_QUERY_CANCELED
            or (engine.dialect.name == "sqlite" and str(error) == "interrupted")
        )
        if stopped:
            raise QueryTimeout(statement_timeout_s) from context.sqlalchemy_exception

    event.listen(engine, "handle_error", handle_error)


def _sqlite_pragmas(dbapi_connection, _record):
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _write_ahead_log(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _write_ahead_log(cursor) -> None:
    """Put the database in WAL mode, once. Several processes opening a new database at once
    race to convert it, and SQLite answers the losers "database is locked" at once, without
    waiting for the busy timeout: they try again, for as long as the busy timeout would wait."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def describe(engine: Engine) -> str:
    """The engine's URL with the password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a one-line reason when the database cannot be used."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except QueryTimeout as exc:
        raise DatabaseUnavailable(f"the database at {describe(engine)} did not answer: {exc}") from None
    except (OperationalError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(getattr(exc, "orig", exc)).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach the database at {describe(engine)}: {reason}") from None


APPEND_ONLY_MESSAGE = "the audit log is append-only"
APPEND_ONLY_TRIGGERS = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION gridops_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END; $$",
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION gridops_audit_append_only()",
        "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION gridops_audit_append_only()",
    ],
    "mysql": [
        "DROP TRIGGER IF EXISTS audit_log_no_update",
        f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{APPEND_ONLY_MESSAGE}'",
        "DROP TRIGGER IF EXISTS audit_log_no_delete",
        f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{APPEND_ONLY_MESSAGE}'",
    ],
}


# Any constant shared by every GridOps process: the key of PostgreSQL's advisory lock on schema set-up.
SCHEMA_LOCK_KEY = 0x67726964  # "grid"


def init_db(engine: Engine) -> None:
    """Create every table and index that is missing; safe to run again, and at the same time.

    Consumers and dashboard workers started together all run this. PostgreSQL refuses two
    concurrent ``CREATE OR REPLACE`` of one function ("tuple concurrently updated") and two
    concurrent creations of one table, so there it takes an advisory lock for the
    transaction, and SQLite the write lock from the start (a reader that turns writer
    later fails with "database is locked" instead of waiting).
    """
    check_reachable(engine)
    with engine.connect().execution_options(**{WRITE_LOCK_OPTION: True}) as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        _create_or_migrate(connection)
        # The database itself keeps the audit log append-only, whatever code runs against it.
        for statement in APPEND_ONLY_TRIGGERS.get(engine.dialect.name, []):
            connection.exec_driver_sql(statement)
        created = connection.execute(select(schema.meta.c.value).where(schema.meta.c.key == "created_at")).scalar()
        if created is None:
            connection.execute(schema.meta.insert().values(key="created_at", value=utcnow().isoformat()))


def _create_or_migrate(connection) -> None:
    """A new database: every table, stamped with the newest revision. One made before
    migrations existed: stamped with the baseline first. Then every revision it lacks."""
    if migrations.current(connection) is None:
        if not inspect(connection).has_table(schema.cases.name):
            _create_all(connection)
            migrations.stamp(connection, migrations.head())
            return
        migrations.stamp(connection, migrations.BASELINE)
    migrations.upgrade(connection)


def _create_all(connection) -> None:
    """Every table; on PostgreSQL the growing ones partitioned by month (data_feeds.partitions)."""
    from data_feeds import partitions

    if connection.dialect.name != "postgresql":
        schema.metadata.create_all(connection)
        return
    schema.metadata.create_all(connection, tables=[table for table in schema.metadata.sorted_tables if table.name not in partitions.NAMES])
    partitions.create_tables(connection)


def get_meta(engine: Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()


def set_meta(connection, key: str, value: str) -> None:
    """Insert or update one meta row inside the caller's transaction."""
    updated = connection.execute(schema.meta.update().where(schema.meta.c.key == key).values(value=value)).rowcount
    if not updated:
        connection.execute(schema.meta.insert().values(key=key, value=value))


def utcnow() -> datetime:
    """Naive UTC now, the way the database stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_db_time(moment: datetime | None) -> datetime | None:
    """Aware datetime → naive UTC for storage."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("refusing to store a naive datetime: give it a time zone")
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db_time(moment: datetime | None) -> datetime | None:
    """Naive UTC from storage → aware UTC."""
    return None if moment is None else moment.replace(tzinfo=UTC)


def replica_lag_seconds(reader: Engine, writer: Engine) -> float | None:
    """How far a PostgreSQL streaming replica (``reader``) is behind its primary (``writer``):
    0 when it has replayed all the primary has written, else the age of the last transaction
    it replayed. None when ``reader`` is no replica (the primary itself, SQLite)."""
    if reader is writer or reader.dialect.name != "postgresql":
        return None
    with reader.connect() as connection:
        in_recovery, replayed, age = connection.execute(text(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())")).one()
    if not in_recovery:
        return None
    with writer.connect() as connection:
        behind = connection.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:replayed AS pg_lsn))"), {"replayed": replayed}).scalar()
    if behind is None or behind <= 0:
        return 0.0
    return max(0.0, float(age)) if age is not None else None

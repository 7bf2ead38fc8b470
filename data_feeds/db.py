"""The grid database connection: engine creation, schema creation and reachability checks."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from data_feeds import schema

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_OPTION = "gridops_write_lock"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message names the URL (without password)."""


def make_engine(database_url: str, writer: bool = False) -> Engine:
    """A pooled engine; SQLite gets WAL and foreign keys, PostgreSQL the psycopg 3 driver.

    ``writer``: on SQLite, transactions take the write lock when they begin (BEGIN
    IMMEDIATE), so that concurrent consumers reading state and then writing it serialise
    instead of failing at the upgrade. One connection asks the same of any engine with the
    execution option ``WRITE_LOCK_OPTION``.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise DatabaseUnavailable(f"DATABASE_URL {database_url!r} is not a database URL (e.g. sqlite:///var/gridops.db)") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername.startswith("sqlite"):
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling begins late (at the first write); take it over.
        def begin(connection):
            immediate = writer or connection.get_execution_options().get(WRITE_LOCK_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        event.listen(engine, "begin", begin)
        return engine
    connect_args = {"connect_timeout": 5} if url.drivername.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)


def _sqlite_pragmas(dbapi_connection, _record):
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def describe(engine: Engine) -> str:
    """The engine's URL with the password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a one-line reason when the database cannot be used."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
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
        schema.metadata.create_all(connection)
        # The database itself keeps the audit log append-only, whatever code runs against it.
        for statement in APPEND_ONLY_TRIGGERS.get(engine.dialect.name, []):
            connection.exec_driver_sql(statement)
        current = connection.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar()
        if current is None:
            connection.execute(schema.meta.insert().values(key="schema_version", value=schema.SCHEMA_VERSION))
            connection.execute(schema.meta.insert().values(key="created_at", value=utcnow().isoformat()))


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
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_db_time(moment: datetime | None) -> datetime | None:
    """Aware datetime → naive UTC for storage."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("refusing to store a naive datetime: give it a time zone")
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def from_db_time(moment: datetime | None) -> datetime | None:
    """Naive UTC from storage → aware UTC."""
    return None if moment is None else moment.replace(tzinfo=timezone.utc)

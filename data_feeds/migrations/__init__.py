"""The schema's history as Alembic revisions; ``data_feeds.db.init_db`` applies them.

A new database is created whole from ``data_feeds.schema`` and stamped with the newest
revision; a database made before migrations existed is stamped with the baseline
(``0001``) and brought forward; any other runs the revisions it lacks. A change to
``schema.py`` that alters a table needs a revision here too (``tests/test_migrations.py``
compares the migrated schema with the declared one).
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

BASELINE = "0001"
LOCATION = Path(__file__).parent


def config(connection) -> Config:
    result = Config()
    result.set_main_option("script_location", str(LOCATION))
    result.attributes["connection"] = connection
    return result


def head() -> str:
    return ScriptDirectory.from_config(config(None)).get_current_head()


def current(connection) -> str | None:
    """The revision the database is at; None for a new database or one made before migrations."""
    return MigrationContext.configure(connection).get_current_revision()


def stamp(connection, revision: str) -> None:
    command.stamp(config(connection), revision)


def upgrade(connection) -> None:
    command.upgrade(config(connection), "head")

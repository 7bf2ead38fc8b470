"""The schema's history as Alembic revisions; ``data_feeds.db.init_db`` applies them.

A new database is created whole from ``data_feeds.schema`` and stamped with the newest
revision; a database made before migrations existed is stamped with the baseline
(``0001``) and brought forward; any other runs the revisions it lacks. A change to
``schema.py`` that alters a table needs a revision here too (``tests/test_migrations.py``
compares the migrated schema with the declared one).
"""
from __future__ import annotations

import warnings
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


def differences(connection) -> list:
    """What the database's schema lacks or has beyond ``data_feeds.schema`` (Alembic's
    comparison), leaving out the monthly partitions and the partitioned tables' keys, which
    include ``ts`` on PostgreSQL by design (``data_feeds.partitions``)."""
    from alembic.autogenerate import compare_metadata

    from data_feeds import partitions, schema

    def include_name(name, type_, parent_names) -> bool:
        if type_ == "table":
            return not (partitions.PARTITION_NAME.match(name or "") or (name or "").endswith("_default"))
        return True

    context = MigrationContext.configure(connection, opts={"include_name": include_name})
    with warnings.catch_warnings():
        # The GiST index on the cases' lifetime exists on PostgreSQL alone, and Alembic cannot
        # reflect expression indexes on the others; it says so for each comparison.
        warnings.filterwarnings("ignore", message="autogenerate skipping metadata-specified expression-based index")
        found = compare_metadata(context, schema.metadata)
    if connection.dialect.name == "postgresql":
        found = [d for d in found if not (isinstance(d, tuple) and d[0] in ("add_constraint", "remove_constraint")
                                           and getattr(getattr(d[1], "table", None), "name", "") in partitions.NAMES)]
    return found

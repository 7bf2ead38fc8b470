"""Alembic's environment: always run inside ``init_db``'s connection and lock."""
from __future__ import annotations

from alembic import context

from data_feeds import schema

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("GridOps runs its migrations through `python app.py migrate` (data_feeds.db.init_db), not the alembic command")
context.configure(connection=connection, target_metadata=schema.metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

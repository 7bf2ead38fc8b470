"""A GiST index on each case's span from report to last change (PostgreSQL only): a window in
the past reads the cases that overlap its end instead of every case changed since.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        from data_feeds import schema

        next(index for index in schema.cases.indexes if index.name == "ix_cases_lifetime").create(connection, checkfirst=True)
        # Statistics of the new expression at once: without them the planner guesses and adds
        # a scan of every case changed since to the index's few.
        op.execute("ANALYZE cases")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_cases_lifetime")

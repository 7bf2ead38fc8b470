"""Case events and patrol points partitioned by month on PostgreSQL (rows and ids kept);
nothing changes on SQLite.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        from data_feeds import partitions

        partitions.partition_existing(connection)


def downgrade() -> None:
    raise NotImplementedError("partitioned tables are not turned back into plain ones")

"""The centre's interventions on a case: supervision (督办), re-dispatch (改派), decline
(退单) and extension (延期), counted on the case.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COUNTS = ("supervise_count", "redispatch_count", "decline_count", "extension_count")


def upgrade() -> None:
    op.add_column("cases", sa.Column("supervised_at", sa.DateTime(), nullable=True))
    for name in COUNTS:
        op.add_column("cases", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))

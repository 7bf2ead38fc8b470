"""Daily and monthly counts of what the cases did (case_rollups): what the indicators read.

The table starts empty; ``python app.py migrate`` (or the feed consumer when it starts)
fills it from the cases, and the consumer keeps it from then on.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNTERS = (
    "reported", "registered", "invalid", "dispatched", "handled", "closed", "evaluated", "satisfied",
    "timely_registered", "returned", "valid_eventually", "due_to_close", "closed_on_time", "due_reworked",
    "due_to_handle", "handled_on_time", *(f"h{k:02d}" for k in range(43)),
)


def upgrade() -> None:
    op.create_table(
        "case_rollups",
        sa.Column("area", sa.String(32), primary_key=True),
        sa.Column("grouping", sa.String(8), primary_key=True),
        sa.Column("period_kind", sa.String(1), primary_key=True),
        sa.Column("period", sa.Date(), primary_key=True),
        sa.Column("category", sa.String(32), primary_key=True),
        sa.Column("dept", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("grade", sa.String(1), primary_key=True),
        sa.Column("is_dispatched", sa.Boolean(), primary_key=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        sa.Column("close_seconds", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_rollups")

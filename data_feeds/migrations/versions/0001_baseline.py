"""Baseline: the schema as ``init-db`` created it before migrations existed (release of issue 11).

Such a database is stamped with this revision and brought forward from it; nothing to do here.

Revision ID: 0001
Revises:
"""
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass

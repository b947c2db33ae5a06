"""Shared short-lived keys (JWT ``jti`` replay, select->sign dedup) in the audit database.

Without Redis each gunicorn worker kept these in its own memory, so a token replayed to another
worker was accepted and a card shown at order-select came back at order-sign. ``shared_ttl_key``
gives every worker of a host (SQLite) or every host (PostgreSQL) one store. Not chained.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_ttl_key",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_shared_ttl_key_expires_at", "shared_ttl_key", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_shared_ttl_key_expires_at", table_name="shared_ttl_key")
    op.drop_table("shared_ttl_key")

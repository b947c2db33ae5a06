"""Store each hook call's data-quality summary on its audit rows.

Adds the nullable ``audit_card.data_quality`` (JSON text: mapping issues counted by kind, and the
patterns that could not be evaluated with why). Rows already stored keep NULL; the hash chain
leaves a NULL out of a row's content (``models.row_content``), so their hashes still verify.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_card") as batch:
        batch.add_column(sa.Column("data_quality", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_card") as batch:
        batch.drop_column("data_quality")

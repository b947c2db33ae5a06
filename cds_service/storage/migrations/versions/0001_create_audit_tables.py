"""Create the audit tables: card rows, feedback rows and the hash chain head.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_card",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("evidence_refs", sa.Text(), nullable=False),
        sa.Column("evidence_keys", sa.Text(), nullable=False),
        sa.Column("suggestion_uuids", sa.Text(), nullable=False),
        sa.Column("config_version", sa.String(64), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("practitioner", sa.String(256), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("card_json", sa.Text(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_card_card_uuid", "audit_card", ["card_uuid"])
    op.create_index("ix_audit_card_time", "audit_card", ["time"])
    op.create_index(
        "ix_audit_card_patient_pattern", "audit_card", ["patient_key", "pattern", "time"]
    )
    op.create_table(
        "audit_feedback",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("accepted_suggestions", sa.Text(), nullable=False),
        sa.Column("override_code", sa.String(128), nullable=True),
        sa.Column("override_system", sa.String(256), nullable=True),
        sa.Column("override_display", sa.Text(), nullable=True),
        sa.Column("override_comment", sa.Text(), nullable=True),
        sa.Column("outcome_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("content_hash", name="uq_audit_feedback_content_hash"),
    )
    op.create_index("ix_audit_feedback_card_uuid", "audit_feedback", ["card_uuid"])
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    op.drop_index("ix_audit_feedback_card_uuid", table_name="audit_feedback")
    op.drop_table("audit_feedback")
    op.drop_index("ix_audit_card_patient_pattern", table_name="audit_card")
    op.drop_index("ix_audit_card_time", table_name="audit_card")
    op.drop_index("ix_audit_card_card_uuid", table_name="audit_card")
    op.drop_table("audit_card")

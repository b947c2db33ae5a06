"""Index overrides by patient, so suppression no longer reads every card a patient was shown.

Creates ``audit_override`` (one row per override feedback and its card) and fills it from the
card and feedback rows already stored. The chained tables are not touched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_override",
        sa.Column("feedback_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("card_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("evidence_keys", sa.Text(), nullable=False),
        sa.Column("outcome_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("feedback_seq", "card_seq"),
    )
    op.create_index(
        "ix_audit_override_patient_time", "audit_override", ["patient_key", "outcome_time"]
    )
    op.execute(
        "INSERT INTO audit_override "
        "(feedback_seq, card_seq, patient_key, pattern, evidence_keys, outcome_time) "
        "SELECT f.seq, c.seq, c.patient_key, c.pattern, c.evidence_keys, f.outcome_time "
        "FROM audit_feedback f JOIN audit_card c ON c.card_uuid = f.card_uuid "
        "WHERE f.outcome = 'overridden'"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_override_patient_time", table_name="audit_override")
    op.drop_table("audit_override")

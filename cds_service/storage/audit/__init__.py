"""The audit store: one row per card (shown or silent) and per feedback item.

``records`` holds the wire-independent row shapes and the ``AuditStore`` protocol; ``store`` the
SQLAlchemy implementation (the only module here that imports SQLAlchemy).
"""

from cds_service.storage.audit.records import AuditStore, CardRecord, FeedbackRecord, pseudonymize

__all__ = ["AuditStore", "CardRecord", "FeedbackRecord", "pseudonymize"]

"""Storage: the audit store (rows, writer, hash chain, exports, migrations) and the shared
short-lived store (JWT ``jti`` replay, select->sign de-duplication)."""

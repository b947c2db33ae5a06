"""The read-only auditor view: HTML pages and their SVG charts over the audit store."""

"""Response headers of the service's own HTML pages (the auditor view, the SMART timeline)."""

from __future__ import annotations

from types import MappingProxyType

# No script at all, nothing fetched from anywhere but this service, never framed; no referrer (the
# SMART callback URL carries the authorization code) and no caching (audit and patient data).
STRICT_PAGE_HEADERS = MappingProxyType({
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
})

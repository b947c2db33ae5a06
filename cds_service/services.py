"""The ``Services`` bundle: everything a hook call needs, built once per app by ``create_app``.

It lives apart from the app factory so that the pipeline and the blueprints can name it without
importing each other (no cycles): ``web.app`` builds it, ``web.*`` blueprints read it from
``app.extensions["psychopharm"]`` and hand it to ``pipeline.run_hook``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from cards.wording import Wording
from cds_service.gather.fhir_client import FhirClient
from cds_service.gather.service_definitions import ServiceDefinition
from cds_service.runtime.metrics import Metrics
from cds_service.settings import Settings
from cds_service.storage.audit.records import AuditStore
from cds_service.storage.ttl_store import TtlStore
from fhir_mappers.codes import CodeLists
from fhir_mappers.medications import IngredientTable


class ClientVerifier(Protocol):
    """Verifies the EHR's JWT (``web.auth.JwtVerifier``); raises ``AuthError`` when it fails."""

    @property
    def enabled(self) -> bool:
        """Whether the site requires a client JWT (``auth.require_jwt``)."""

    def verify(self, authorization_header: str | None, audience: str) -> object:
        """Check the ``Authorization: Bearer <JWT>`` value against ``audience`` (the URL called);
        returns the verified client, raises ``AuthError`` when the token is missing or invalid."""


def utc_now() -> datetime:
    """The current time, tz-aware UTC (the default ``Services.clock``)."""
    return datetime.now(UTC)


def site_date(moment: datetime, timezone: str) -> date:
    """The calendar date of ``moment`` at the site (``service.timezone``, an IANA name): the
    "today" the patterns compare the EHR's dates with, which name the clinic's local day. A
    naive ``moment`` is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class Services:
    """Everything a hook call needs, built once per app; the blueprints read it, never globals.

    ``definitions`` maps service id to its definition (enabled services only); ``table``,
    ``codes`` and ``wording`` are the frozen tables from ``loaders``; ``clock`` returns tz-aware
    UTC; ``owns_audit`` says whether ``close`` closes the audit store (False when a caller passed
    its own store in).
    """

    settings: Settings
    definitions: Mapping[str, ServiceDefinition]  # enabled services only
    table: IngredientTable
    codes: CodeLists
    wording: Mapping[str, Wording]
    audit: AuditStore
    ttl: TtlStore
    verifier: ClientVerifier
    fhir_client: FhirClient
    metrics: Metrics
    clock: Callable[[], datetime] = utc_now
    owns_audit: bool = True
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    def date_of(self, moment: datetime) -> date:
        """The site's date at ``moment`` (``site_date`` in ``service.timezone``)."""
        return site_date(moment, self.settings.service.timezone)

    def today(self) -> date:
        """The site's date now: ``clock`` read in ``service.timezone``."""
        return self.date_of(self.clock())

    def close(self) -> None:
        """Flush the audit queue and release connections; safe to call more than once."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.owns_audit:
            self.audit.close()
        self.fhir_client.close()

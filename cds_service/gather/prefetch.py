"""Data for one hook call: prefetch first, then bounded reads from the allow-listed fhirServer.

CDS Hooks 2.0 §Prefetch Template: a key the client could not fill is omitted (fetch it), ``null``
means "no data" (do not fetch), an OperationOutcome reports an error (fetch it), and a prefetched
Bundle may be paginated (fetch the rest). All reads of one call share one deadline and run in a
few threads; a required key that is still missing at the end becomes a 412 (PrefetchError).
Log lines and error messages name keys and resource types, never patient ids or the token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from cds_service.errors import PrefetchError
from cds_service.gather.bundles import (
    bundle_entries,
    merged_pages,
    next_link,
    prefetch_problem,
    reports_an_error,
    type_of,
)
from cds_service.gather.fhir_client import DEADLINE_GRACE_S, FhirClient, FhirFetchError, is_under
from cds_service.gather.prefetch_templates import resolve_template
from cds_service.gather.referenced_medications import fetch_medications, medication_references
from cds_service.settings import FhirSettings

log = logging.getLogger(__name__)

MAX_WORKERS = 6


@dataclass(frozen=True)
class Gathered:
    """What ``gather_data`` found for one hook call (read-only mappings).

    ``values``: prefetch key -> the resource, the searchset Bundle with every page's entries
    merged, or None when the client sent ``null`` ("no data"). ``failed``: key -> why its data
    is missing or partial (safe to log). ``medications``: ``"Medication/<id>"`` -> the
    Medication resource read because a MedicationRequest referenced it. ``fetched``: sorted keys
    whose data (or some of its pages) came from the FHIR server rather than the prefetch.
    """

    values: Mapping[str, Any]  # key -> resource, merged searchset Bundle, or None ("no data")
    failed: Mapping[str, str]  # key -> reason (also set for keys whose Bundle is partial)
    medications: Mapping[str, Mapping[str, Any]]  # "Medication/x" -> Medication
    fetched: tuple[str, ...]  # keys with data read from the FHIR server


class _Job(NamedTuple):
    url: str | None  # first page to read; None when continuing a prefetched Bundle
    bundle: Mapping[str, Any] | None  # the prefetched first page
    why: str  # how the key came to need fetching, for the failure reason


class _Result(NamedTuple):
    value: Any
    partial: str | None
    from_server: bool


def _display(url: str) -> str:
    """A fhirServer as shown in messages: no credentials, query or fragment, bounded length."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host: still a message, never a 500
        return "<unparseable URL>"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]


def gather_data(
    *,
    prefetch: Mapping[str, Any] | None,
    templates: Mapping[str, str],
    context: Mapping[str, Any],
    fhir_server: str | None,
    access_token: str | None,
    required: AbstractSet[str],
    client: FhirClient,
    settings: FhirSettings,
    clock: Callable[[], float] = time.monotonic,
    token_problem: str | None = None,
) -> Gathered:
    """Every prefetch key's data, fetching what the client did not send; see the module doc.

    ``templates`` maps each key to the service's prefetch template; ``required`` are the keys
    without which the call cannot be answered; ``context`` fills the templates' tokens. All reads
    share one deadline of ``settings.call_budget_s`` seconds, follow at most
    ``settings.max_pages`` pages per key and only ``next`` links under ``fhir_server``. Raises
    ``PrefetchError`` (HTTP 412) naming each required key still missing and why; other keys'
    failures are logged and returned in ``Gathered.failed``.

    ``clock`` must be the clock of ``client`` (both default to ``time.monotonic``).
    ``token_problem`` says why the request's fhirAuthorization cannot be used: nothing is then
    fetched, and keys that needed fetching fail as they would with an unreachable server.
    """
    deadline = clock() + settings.call_budget_s
    server = fhir_server.rstrip("/") if fhir_server else None
    if server is None:
        server_problem: str | None = "the request has no fhirServer to fetch it from"
    else:
        refusal = client.refusal(server)
        server_problem = refusal and f"fhirServer {_display(server)} is {refusal}"
        if server_problem is None and token_problem is not None:
            server_problem = f"the access token cannot be used ({token_problem})"
    values: dict[str, Any] = {}
    failed: dict[str, str] = {}
    jobs: dict[str, _Job] = {}
    for key in sorted(set(templates) | set(required)):
        why = "missing"
        if prefetch is not None and key in prefetch:
            value = prefetch[key]
            problem = None if value is None else prefetch_problem(value)
            if problem is None:
                if value is not None and next_link(value) is not None:
                    jobs[key] = _Job(None, value, "")
                else:
                    values[key] = value
                continue
            log.warning("prefetch key %r holds %s; treated as missing", key, problem)
            why = f"prefetched as {problem}"
        resolved = resolve_template(templates[key], context) if key in templates else None
        if key not in templates:
            failed[key] = f"{why} and the service declares no prefetch template for it"
        elif server is None or server_problem is not None:
            failed[key] = f"{why} and {server_problem}"
        elif resolved is None:
            failed[key] = f"{why} and its template needs a context value the request lacks"
        else:
            jobs[key] = _Job(f"{server}/{resolved}", None, why)

    fetched: list[str] = []
    medications: dict[str, Mapping[str, Any]] = {}
    executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="fhir-fetch")
    try:
        futures = {
            key: executor.submit(
                _run_job, job, client, access_token, deadline, server, settings.max_pages
            )
            for key, job in jobs.items()
        }
        _collect(futures, jobs, clock, deadline, values, failed, fetched)
        if server is not None and server_problem is None:
            refs = medication_references(values, context, server)
            medications = fetch_medications(
                refs, server, executor, client, access_token, clock, deadline
            )
    finally:
        # Never wait for a straggler: each read is bounded by its own timeout and ends on its own.
        executor.shutdown(wait=False, cancel_futures=True)

    for key, value in values.items():
        if key not in failed and reports_an_error(value):
            failed[key] = "partial: the search reported an error next to its results"
    for key, reason in failed.items():
        log.warning("prefetch key %r: %s", key, reason)
    missing = sorted(k for k in required if k not in values)
    if missing:
        raise PrefetchError("; ".join(f"prefetch key {k!r} {failed[k]}" for k in missing))
    return Gathered(
        values=MappingProxyType(values),
        failed=MappingProxyType(failed),
        medications=MappingProxyType(medications),
        fetched=tuple(sorted(fetched)),
    )


def _collect(
    futures: Mapping[str, Future[_Result]],
    jobs: Mapping[str, _Job],
    clock: Callable[[], float],
    deadline: float,
    values: dict[str, Any],
    failed: dict[str, str],
    fetched: list[str],
) -> None:
    if futures:
        wait(futures.values(), timeout=max(0.0, deadline - clock()) + DEADLINE_GRACE_S)
    for key, future in futures.items():
        job = jobs[key]
        if not future.done():
            future.cancel()
            if job.bundle is not None:
                values[key] = merged_pages(job.bundle, bundle_entries(job.bundle))
                failed[key] = "partial: later pages did not arrive within fhir.call_budget_s"
            else:
                failed[key] = f"{job.why} and the fetch did not finish within fhir.call_budget_s"
            continue
        try:
            result = future.result()
        except FhirFetchError as exc:
            failed[key] = f"{job.why} and the fetch failed: {exc.reason}"
            continue
        values[key] = result.value
        if result.partial:
            failed[key] = f"partial: {result.partial}"
        if result.from_server:
            fetched.append(key)


def _run_job(
    job: _Job,
    client: FhirClient,
    token: str | None,
    deadline: float,
    server: str | None,
    max_pages: int,
) -> _Result:
    if job.url is not None:
        first = client.get_json(job.url, token=token, deadline=deadline)
        problem = prefetch_problem(first)
        if problem is not None:
            raise FhirFetchError(f"the server answered with {problem}")
        from_server = True
    else:
        first, from_server = job.bundle, False
    if type_of(first) != "Bundle":
        return _Result(first, None, from_server)
    entries = bundle_entries(first)
    pages, seen, partial = 1, set(), None
    url = next_link(first)
    while url is not None:
        url = urljoin(server + "/", url) if server else url
        if pages >= max_pages:
            partial = f"stopped after fhir.max_pages ({max_pages}) pages"
            break
        partial = _unfollowable(url, server, client)
        if partial is not None:
            break
        if url in seen:
            partial = "next link points to a page already read"
            break
        seen.add(url)
        try:
            page = client.get_json(url, token=token, deadline=deadline)
        except FhirFetchError as exc:
            partial = f"page {pages + 1}: {exc.reason}"
            break
        if type_of(page) != "Bundle":
            partial = f"page {pages + 1} is not a Bundle"
            break
        entries.extend(bundle_entries(page))
        pages, from_server = pages + 1, True
        url = next_link(page)
    return _Result(merged_pages(first, entries), partial, from_server)


def _unfollowable(url: str, server: str | None, client: FhirClient) -> str | None:
    """Why the ``next`` link ``url`` of a prefetched or fetched page is not read (the key is then
    partial), or None when it may be read: only pages under the request's allow-listed
    ``server`` are, with the request's token."""
    if server is None:
        return "next link not followed: the request has no fhirServer to read it from"
    if not is_under(server, url):
        return "next link not followed: it is outside the request's fhirServer"
    refusal = client.refusal(url)
    return refusal and f"next link not followed: it is {refusal}"

"""Data for one hook call: prefetch first, then bounded reads from the allow-listed fhirServer.

CDS Hooks 2.0 §Prefetch Template: a key the client could not fill is omitted (fetch it), ``null``
means "no data" (do not fetch), an OperationOutcome reports an error (fetch it), and a prefetched
Bundle may be paginated (fetch the rest). All reads of one call share one deadline and run in a
few threads; a required key that is still missing at the end becomes a 412 (PrefetchError).
Log lines and error messages name keys and resource types, never patient ids or the token.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from cds_service.errors import PrefetchError
from cds_service.fhir_client import FhirClient, FhirFetchError, is_under
from cds_service.prefetch_templates import resolve_template
from cds_service.settings import FhirSettings

log = logging.getLogger(__name__)

MAX_WORKERS = 6
# Referenced Medications only add names and codes; past this many the rest stay unresolved.
MAX_MEDICATION_FETCHES = 50
# Lets a read that ends right at the deadline hand back its result instead of being dropped.
_GRACE_S = 0.1
_MEDICATION_USERS = frozenset({"MedicationRequest", "MedicationDispense", "MedicationStatement"})
_MEDICATION_REF = re.compile(r"Medication/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?")
_JSON_TYPES = {str: "string", list: "array", int: "number", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Gathered:
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


def prefetch_problem(value: Any) -> str | None:
    """Why a prefetched (or fetched) value cannot be used as data; None when it can."""
    if not isinstance(value, dict):
        return f"a JSON {_JSON_TYPES.get(type(value), type(value).__name__)}, not a FHIR resource"
    if not isinstance(value.get("resourceType"), str):
        return "a JSON object without resourceType"
    if value["resourceType"] == "OperationOutcome":
        return "an OperationOutcome"
    entries = bundle_entries(value)
    if (
        value["resourceType"] == "Bundle"
        and entries
        and all(_type_of(e.get("resource")) == "OperationOutcome" for e in entries)
    ):
        return "a Bundle of OperationOutcomes"
    return None


def bundle_entries(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def next_link(bundle: Mapping[str, Any]) -> str | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _type_of(resource: Any) -> str | None:
    return resource.get("resourceType") if isinstance(resource, dict) else None


def _display(url: str) -> str:
    """A fhirServer as shown in messages: no credentials, query or fragment, bounded length."""
    parts = urlsplit(url)
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
) -> Gathered:
    """Every prefetch key's data, fetching what the client did not send; see the module doc.

    ``clock`` must be the clock of ``client`` (both default to ``time.monotonic``).
    """
    deadline = clock() + settings.call_budget_s
    server = fhir_server.rstrip("/") if fhir_server else None
    if server is None:
        server_problem: str | None = "the request has no fhirServer to fetch it from"
    else:
        refusal = client.refusal(server)
        server_problem = refusal and f"fhirServer {_display(server)} is {refusal}"
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
            refs = _medication_references(values, context, server)
            medications = _fetch_medications(
                refs, server, executor, client, access_token, clock, deadline
            )
    finally:
        # Never wait for a straggler: each read is bounded by its own timeout and ends on its own.
        executor.shutdown(wait=False, cancel_futures=True)

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
        wait(futures.values(), timeout=max(0.0, deadline - clock()) + _GRACE_S)
    for key, future in futures.items():
        job = jobs[key]
        if not future.done():
            future.cancel()
            if job.bundle is not None:
                values[key] = _merged(job.bundle, bundle_entries(job.bundle))
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
    if _type_of(first) != "Bundle":
        return _Result(first, None, from_server)
    entries = bundle_entries(first)
    pages, seen, partial = 1, set(), None
    url = next_link(first)
    while url is not None:
        url = urljoin(server + "/", url) if server else url
        if pages >= max_pages:
            partial = f"stopped after fhir.max_pages ({max_pages}) pages"
            break
        if server is None or not is_under(server, url) or not client.is_allowed(url):
            partial = "next link not followed: it is outside the allow-listed fhirServer"
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
        if _type_of(page) != "Bundle":
            partial = f"page {pages + 1} is not a Bundle"
            break
        entries.extend(bundle_entries(page))
        pages, from_server = pages + 1, True
        url = next_link(page)
    return _Result(_merged(first, entries), partial, from_server)


def _merged(first: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One Bundle holding every page's entries; its next link is dropped as it has been followed."""
    links = first.get("link")
    kept = (
        [ln for ln in links if isinstance(ln, dict) and ln.get("relation") != "next"]
        if isinstance(links, list)
        else []
    )
    merged = {**first, "entry": entries}
    if kept:
        merged["link"] = kept
    else:
        merged.pop("link", None)
    return merged


def _resources(value: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(value, dict):
        return
    yield value
    if value.get("resourceType") == "Bundle":
        for entry in bundle_entries(value):
            if isinstance(entry.get("resource"), dict):
                yield entry["resource"]


def _medication_references(
    values: Mapping[str, Any], context: Mapping[str, Any], server: str
) -> list[str]:
    """Medication references ("Medication/x") to fetch: not contained, not already present."""
    present: set[str] = set()
    wanted: list[str] = []
    # Draft orders in the context reference Medications too.
    for value in [*values.values(), *context.values()]:
        for resource in _resources(value):
            rtype = _type_of(resource)
            if rtype == "Medication" and isinstance(resource.get("id"), str):
                present.add(f"Medication/{resource['id']}")
            elif rtype in _MEDICATION_USERS:
                med = resource.get("medicationReference")
                ref = med.get("reference") if isinstance(med, dict) else None
                if isinstance(ref, str) and ref.startswith(server + "/"):
                    ref = ref[len(server) + 1 :]
                match = _MEDICATION_REF.fullmatch(ref) if isinstance(ref, str) else None
                if match and f"Medication/{match.group(1)}" not in wanted:
                    wanted.append(f"Medication/{match.group(1)}")
    return [ref for ref in wanted if ref not in present][:MAX_MEDICATION_FETCHES]


def _fetch_medications(
    refs: list[str],
    server: str,
    executor: ThreadPoolExecutor,
    client: FhirClient,
    token: str | None,
    clock: Callable[[], float],
    deadline: float,
) -> dict[str, Mapping[str, Any]]:
    """Best effort: a Medication that cannot be read leaves its order classified by other means."""
    if not refs:
        return {}
    futures = {
        ref: executor.submit(client.get_json, f"{server}/{ref}", token=token, deadline=deadline)
        for ref in refs
    }
    wait(futures.values(), timeout=max(0.0, deadline - clock()) + _GRACE_S)
    found: dict[str, Mapping[str, Any]] = {}
    for ref, future in futures.items():
        if not future.done() or future.exception() is not None:
            future.cancel()
            continue
        resource = future.result()
        if _type_of(resource) == "Medication":
            found[ref] = resource
    if len(found) < len(refs):
        log.warning(
            "%d of %d referenced Medications could not be read", len(refs) - len(found), len(refs)
        )
    return found

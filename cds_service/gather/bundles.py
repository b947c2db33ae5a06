"""Reading prefetch values and search pages as EHRs send them: plain dicts, checked, never trusted.

CDS Hooks 2.0 allows a prefetch value to be a resource, a searchset Bundle (possibly paginated),
``null``, or an OperationOutcome reporting an error; real clients have also sent HTML error pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_JSON_TYPES = {str: "string", list: "array", int: "number", float: "number", bool: "boolean"}


# OperationOutcome.issue.severity values that only inform (FHIR R4 IssueSeverity): a search that
# matched nothing may say so with such an issue in a ``search.mode: outcome`` entry (Epic:
# "4101: Resource request returns no results.").
_NOTE_SEVERITIES = frozenset({"information", "warning"})


def prefetch_problem(value: Any) -> str | None:
    """Why a prefetched (or fetched) value cannot be used as data; None when it can.

    Unusable: not a JSON object, no string ``resourceType``, an OperationOutcome (CDS Hooks 2.0:
    how a client reports a prefetch it could not run), or a Bundle whose every entry is an
    OperationOutcome reporting a failure. A searchset whose only entries are outcomes that merely
    inform (every issue of severity ``information`` or ``warning``) is an empty result, not a
    failure. An outcome without a readable severity counts as a failure: what it reports is
    unknown, and an empty result would be read as "none on record". The reason names the JSON
    type, never the content.
    """
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
        and all(type_of(e.get("resource")) == "OperationOutcome" for e in entries)
        and not all(is_note(e["resource"]) for e in entries)
    ):
        return "a Bundle of OperationOutcomes"
    return None


def reports_an_error(value: Any) -> bool:
    """Whether a Bundle holds, next to its results, an OperationOutcome reporting a failure (an
    ``error``, ``fatal`` or unreadable issue: "pharmacy network could not be retrieved"): the
    search answered in part, and what it could not read is unknown, not absent."""
    if type_of(value) != "Bundle":
        return False
    return any(
        type_of(e.get("resource")) == "OperationOutcome" and not is_note(e["resource"])
        for e in bundle_entries(value)
    )


def is_note(outcome: Mapping[str, Any]) -> bool:
    """Whether an OperationOutcome only informs: at least one issue, and every issue of severity
    ``information`` or ``warning`` (R4 IssueSeverity); an error, a fatal issue or an issue
    without a severity is not a note."""
    issues = outcome.get("issue")
    if not isinstance(issues, list) or not issues:
        return False
    return all(
        isinstance(issue, dict) and issue.get("severity") in _NOTE_SEVERITIES for issue in issues
    )


def bundle_entries(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object items of ``Bundle.entry`` (others skipped); ``[]`` when it is not a list."""
    entries = bundle.get("entry")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of the first ``Bundle.link`` with ``relation`` ``next``; None when there is none
    or its ``url`` is not a non-empty string (the URL is not checked against the allow-list)."""
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def type_of(resource: Any) -> str | None:
    """``resource["resourceType"]`` when ``resource`` is a dict, else None."""
    return resource.get("resourceType") if isinstance(resource, dict) else None


def merged_pages(first: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> dict[str, Any]:
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


def resources_in(value: Any) -> Iterator[Mapping[str, Any]]:
    """``value`` itself (when a dict), then, for a Bundle, each ``entry.resource`` that is an
    object; nothing for a non-dict. Nested Bundles are not descended into."""
    if not isinstance(value, dict):
        return
    yield value
    if value.get("resourceType") == "Bundle":
        for entry in bundle_entries(value):
            if isinstance(entry.get("resource"), dict):
                yield entry["resource"]

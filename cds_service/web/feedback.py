"""Parse a CDS Hooks 2.0 feedback body into FeedbackRecords (spec §Feedback).

``{"feedback": [...]}``; each item names the card (its uuid), the outcome, the accepted
suggestions (required for ``accepted``) or an override reason (a Coding picked from our list and/or
a free-text comment), and an RFC 3339 timestamp. The first problem is reported with the item index
and the field, so that a client developer can fix the payload without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cds_service.errors import RequestError
from cds_service.storage.audit.models import FEEDBACK, max_lengths
from cds_service.storage.audit.records import FeedbackRecord

OUTCOMES = frozenset({"accepted", "overridden"})
# RFC 3339 §5.6 date-time: full date, "T" (or space), time, optional fraction, Z or an offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_MAX_ITEMS = 1000
# Column -> longest value of the audit table's bounded string columns: PostgreSQL refuses a
# longer one and fails the whole insert (a 500), so the field is refused first, by name.
STORED_LENGTHS = max_lengths(FEEDBACK)


def _error(index: int, field: str, problem: str, code: str = "invalid-field") -> RequestError:
    return RequestError(f"feedback[{index}].{field}: {problem}", code=code)


def _string(
    item: Mapping[str, Any], index: int, field: str, prefix: str = "", column: str | None = None
) -> str:
    """``item[field]``, a non-empty string of at most the length of the audit ``column`` it is
    stored in (when given). Raises ``RequestError`` naming ``feedback[index].<prefix><field>``:
    ``missing-field`` when absent, ``invalid-field`` when not such a string."""
    value = item.get(field)
    if value is None:
        raise _error(index, prefix + field, "is required", "missing-field")
    if not isinstance(value, str) or not value.strip():
        raise _error(index, prefix + field, "must be a non-empty string")
    if column is not None and len(value) > STORED_LENGTHS[column]:
        raise _error(
            index, prefix + field,
            f"must be at most {STORED_LENGTHS[column]} characters (the audit log stores no more)",
        )
    return value


def parse_timestamp(value: str) -> datetime | None:
    """RFC 3339 date-time with an offset (``Z`` or ``±hh:mm``), as tz-aware UTC; None when it is
    not one. Fractions beyond microseconds are truncated."""
    if not _RFC3339.match(value):
        return None
    # Python's parser stops at microseconds; RFC 3339 allows any number of fraction digits.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.upper().replace(" ", "T"))
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def _accepted(item: Mapping[str, Any], index: int) -> tuple[str, ...]:
    suggestions = item.get("acceptedSuggestions")
    if suggestions is None:
        raise _error(index, "acceptedSuggestions", "is required when outcome is accepted",
                     "missing-field")
    if not isinstance(suggestions, list) or not suggestions:
        raise _error(index, "acceptedSuggestions", "must be a non-empty array")
    ids = []
    for n, suggestion in enumerate(suggestions):
        if not isinstance(suggestion, dict):
            raise _error(index, f"acceptedSuggestions[{n}]", "must be an object")
        ids.append(_string(suggestion, index, "id", f"acceptedSuggestions[{n}]."))
    return tuple(ids)


def _override(item: Mapping[str, Any], index: int) -> tuple[str | None, ...]:
    reason_obj = item.get("overrideReason")
    if reason_obj is None:
        return (None, None, None, None)
    if not isinstance(reason_obj, dict):
        raise _error(index, "overrideReason", "must be an object")
    reason, comment = reason_obj.get("reason"), reason_obj.get("userComment")
    if reason is None and comment is None:
        raise _error(index, "overrideReason", "needs a reason or a userComment", "missing-field")
    code = system = display = None
    if reason is not None:
        if not isinstance(reason, dict):
            raise _error(index, "overrideReason.reason", "must be a Coding object")
        code = _string(reason, index, "code", "overrideReason.reason.", "override_code")
        system = _string(reason, index, "system", "overrideReason.reason.", "override_system")
        # Clients may send the Coding without a display (the sandbox does).
        raw_display = reason.get("display")
        if raw_display is not None and not isinstance(raw_display, str):
            raise _error(index, "overrideReason.reason.display", "must be a string")
        display = raw_display or None
    if comment is not None and not isinstance(comment, str):
        raise _error(index, "overrideReason.userComment", "must be a string")
    return (code, system, display, comment or None)


def _item(raw: Any, index: int, service_id: str, received: datetime) -> FeedbackRecord:
    if not isinstance(raw, dict):
        raise RequestError(f"feedback[{index}]: must be an object", code="invalid-field")
    # The card's uuid as this service sent it; a client that sends its summary is told here.
    card = _string(raw, index, "card", column="card_uuid")
    outcome = _string(raw, index, "outcome")
    if outcome not in OUTCOMES:
        raise _error(index, "outcome", f"must be one of {sorted(OUTCOMES)}")
    stamp = _string(raw, index, "outcomeTimestamp")
    outcome_time = parse_timestamp(stamp)
    if outcome_time is None:
        raise _error(index, "outcomeTimestamp", "must be an RFC 3339 date-time with a time zone")
    accepted = _accepted(raw, index) if outcome == "accepted" else ()
    code, system, display, comment = _override(raw, index)
    return FeedbackRecord(
        card_uuid=card,
        service_id=service_id,
        outcome=outcome,
        accepted_suggestions=accepted,
        override_code=code,
        override_system=system,
        override_display=display,
        override_comment=comment,
        outcome_time=outcome_time,
        received_time=received,
    )


def parse_feedback(
    data: Mapping[str, Any], service_id: str, received: datetime
) -> list[FeedbackRecord]:
    """One ``FeedbackRecord`` per item of ``data["feedback"]`` (1-1000 items), stamped
    ``received`` (tz-aware UTC).

    Raises ``RequestError`` (400) at the first problem, naming the item index and field:
    ``missing-field`` for an absent ``feedback``, card, outcome, outcomeTimestamp,
    acceptedSuggestions (when accepted), or an overrideReason with neither reason nor
    userComment; ``invalid-field`` for a wrong type, an empty or oversized list, an outcome other
    than accepted/overridden, a timestamp without a time zone, or a string longer than the audit
    column it is stored in (``card``, ``overrideReason.reason.code`` and ``.system``; see
    ``models.max_lengths``).
    """
    items = data.get("feedback")
    if items is None:
        raise RequestError("feedback is required", code="missing-field")
    if not isinstance(items, list) or not items:
        raise RequestError("feedback must be a non-empty array", code="invalid-field")
    if len(items) > _MAX_ITEMS:
        raise RequestError(f"feedback holds more than {_MAX_ITEMS} items", code="invalid-field")
    return [_item(raw, i, service_id, received) for i, raw in enumerate(items)]

"""What can go wrong in a SMART launch, as the page the clinician sees: what happened, what to do.

Each failure is a ``LaunchError`` with its HTTP status; the views render it with the error page.
Messages never carry the token, the code, the state or a patient id.
"""

from __future__ import annotations


class LaunchError(Exception):
    """A failure of the launch or the timeline, with the page's status and texts."""
    def __init__(self, status: int, title: str, message: str, advice: str) -> None:
        super().__init__(f"{status} {title}")
        self.status = status
        self.title = title
        self.message = message
        self.advice = advice


RELAUNCH = "Open the medication timeline again from the patient's chart (or from the card)."


def not_configured() -> LaunchError:
    """404: the site has not registered the app (``smart.client_id`` is empty)."""
    return LaunchError(
        404, "The medication timeline is not set up",
        "This service has no SMART client registration (smart.client_id is empty).",
        "Ask the informatics team to register the app with the EHR (see the README).",
    )


def bad_launch(message: str) -> LaunchError:
    """400: the launch or callback request cannot be accepted; ``message`` says why."""
    return LaunchError(400, "The launch could not be started", message, RELAUNCH)


def session_ended() -> LaunchError:
    """401: no live session in this browser."""
    return LaunchError(
        401, "Your timeline session has ended",
        "The session has expired, was closed, or was opened in another browser.", RELAUNCH,
    )


def ehr_failed(message: str) -> LaunchError:
    """502: the EHR's authorization or FHIR server failed; ``message`` says which."""
    return LaunchError(
        502, "The EHR did not answer as expected", message,
        "Try again in a moment; if it keeps failing, tell the informatics team the time it "
        "happened.",
    )

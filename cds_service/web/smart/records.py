"""The launched patient's history, read with the SMART token through the hooks' own gathering.

The same prefetch templates as the patient-view service (config/services.yaml), fetched by
``gather_data`` with the same allow-listed ``FhirClient``: search pages are followed (up to
``smart.max_pages``), referenced Medications are read, and everything shares one time budget
(``smart.call_budget_s``, longer than a hook call's since a whole history is read).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cds_service.errors import PrefetchError
from cds_service.gather.prefetch import gather_data
from cds_service.gather.service_definitions import load_definitions
from cds_service.services import Services
from cds_service.web.smart.errors import ehr_failed
from fhir_mappers.mapper import map_record
from fhir_mappers.record import PatientRecord

log = logging.getLogger(__name__)

TEMPLATES_SERVICE = "psychopharm-patient-view"
# What each prefetch key means to a clinician, for the "could not be read" note on the page.
KEY_LABELS = {
    "patient": "patient record",
    "medications": "medication orders",
    "statements": "medication statements",
    "allergies": "allergies and intolerances",
    "encounters": "visits",
    "dispenses": "dispenses",
    "observations": "PHQ-9/GAD-7 scores",
    "conditions": "conditions",
}


@dataclass(frozen=True)
class PatientHistory:
    """The mapped record and what could not be read (labels a clinician understands)."""
    record: PatientRecord
    unavailable: tuple[str, ...]  # labels of the data that could not be read (or only in part)


def read_history(
    services: Services, *, iss: str, patient: str, access_token: str
) -> PatientHistory:
    """Every resource the timeline shows; LaunchError (502) when the orders cannot be read."""
    smart = services.settings.smart
    definition = load_definitions()[TEMPLATES_SERVICE]
    fhir = services.settings.fhir.model_copy(
        update={"call_budget_s": smart.call_budget_s, "max_pages": smart.max_pages}
    )
    try:
        gathered = gather_data(
            prefetch=None,
            templates=definition.prefetch,
            context={"patientId": patient},
            fhir_server=iss,
            access_token=access_token,
            required=frozenset({"medications"}),
            client=services.fhir_client,
            settings=fhir,
        )
    except PrefetchError as exc:
        # The message names keys and reasons only (no token, no query, no patient id).
        log.warning("timeline: medication orders unavailable: %s", exc.message)
        raise ehr_failed("The patient's medication orders could not be read from the EHR.") \
            from exc
    record = map_record(
        gathered.values.values(), services.table, medications=gathered.medications,
        codes=services.codes,
    )
    unavailable = tuple(KEY_LABELS.get(k, k) for k in sorted(gathered.failed))
    return PatientHistory(record, unavailable)

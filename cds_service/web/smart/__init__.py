"""The medication-timeline SMART on FHIR app served by this service (blueprint in ``views``)."""

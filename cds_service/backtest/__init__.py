"""Population backtest: run the patterns over FHIR Bulk NDJSON or Bundles, report firing rates."""

"""Running the service: the gunicorn application, per-worker GC settings, logging, metrics."""

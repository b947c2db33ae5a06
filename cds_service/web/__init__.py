"""The HTTP edge: app factory, blueprints (CDS Hooks, feedback, auditor, admin, ops), auth and keys,
CORS, error handlers and the OpenAPI document. The only package that imports Flask."""

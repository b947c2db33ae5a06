# psychopharm-cds under gunicorn, as a non-root user, with the site config mounted at /config and
# the data directory (SQLite audit store, if the site uses one) a volume:
#   docker build -t psychopharm-cds .
#   docker run -p 8080:8080 -e WEB_CONCURRENCY=4 -v $PWD/site:/config:ro \
#              -v psychopharm-data:/var/lib/psychopharm psychopharm-cds
#
# Base image pinned by digest: the multi-architecture index of python:3.11.14-slim-bookworm as
# published on Docker Hub and pinned by several public projects. It was not resolved against the
# registry where this file was written (no Docker engine there); before a release, check it with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm
# and move tag and digest together (and CPython's version in scripts/lock.sh).
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Exact versions with hashes (scripts/lock.sh), in their own layer: rebuilt only when they change.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY fhir_mappers ./fhir_mappers
COPY cards ./cards
COPY config ./config
# The project alone: its dependencies and build backend are already installed from the lock.
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --uid 10001 --home-dir /var/lib/psychopharm cds \
    && mkdir -p /var/lib/psychopharm /config && chown cds /var/lib/psychopharm

USER cds
WORKDIR /var/lib/psychopharm
# The default SQLite audit database (relative to this directory) must outlive the container.
VOLUME ["/var/lib/psychopharm"]
# Gunicorn workers; `serve` reads it when --workers is not given.
ENV WEB_CONCURRENCY=2
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"

# The site file must set auth.require_jwt: true with trusted_clients (the service refuses to listen
# on 0.0.0.0 without JWT verification), fhir.allowed_servers, storage.url and the patient-key secret
# (the placeholder is refused). `psychopharm-cds check-config /config/site.yaml` checks it.
CMD ["psychopharm-cds", "serve", "--host", "0.0.0.0", "--port", "8080", "--config", "/config/site.yaml"]

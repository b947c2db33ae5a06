# psychopharm-cds under gunicorn, as a non-root user, with the site config mounted at /config.
#   docker build -t psychopharm-cds .
#   docker run -p 8080:8080 -v $PWD/site:/config:ro psychopharm-cds
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY fhir_mappers ./fhir_mappers
COPY cards ./cards
COPY config ./config
RUN pip install . && useradd --system --uid 10001 --home-dir /var/lib/psychopharm cds \
    && mkdir -p /var/lib/psychopharm /config && chown cds /var/lib/psychopharm

USER cds
WORKDIR /var/lib/psychopharm
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"

# The site file must set auth.require_jwt: true with trusted_clients (the service refuses to listen
# on 0.0.0.0 without JWT verification), fhir.allowed_servers, storage.url and the patient-key secret.
CMD ["psychopharm-cds", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2", "--config", "/config/site.yaml"]

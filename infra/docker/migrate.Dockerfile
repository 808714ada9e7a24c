# One-shot tools image: provisions roles/schemas and applies every data-owning
# service's Alembic migrations (gateway, ingest, chunker, query).
# Build from the repository root: docker build -f infra/docker/migrate.Dockerfile .
#
# The service packages are installed with --no-deps: migrations import only
# vectrion_common and each service's models.py (SQLAlchemy), so the migrate
# image does not carry the chunker's extraction stack or the query service's
# Qdrant client.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin vectrion
WORKDIR /app

COPY libs/common /src/libs/common
COPY services/gateway /src/services/gateway
COPY services/ingest /src/services/ingest
COPY services/chunker /src/services/chunker
COPY services/query /src/services/query
RUN pip install /src/libs/common \
 && pip install --no-deps /src/services/gateway /src/services/ingest /src/services/chunker /src/services/query

USER 10001
CMD ["python", "-m", "vectrion_common.migrate", "--services-dir", "/src/services", "gateway", "ingest", "chunker", "query"]

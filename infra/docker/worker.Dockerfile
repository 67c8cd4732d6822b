# DigitFlow worker image: Celery worker and beat (sweeper) + LiteRT inference (no TensorFlow).
# Build from the repository root:  docker build -f infra/docker/worker.Dockerfile -t digitflow-worker .

FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Dependencies first, read from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml .
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['worker']))" > requirements.txt \
 && pip install -r requirements.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_DIR=/app/models/default \
    DATA_DIR=/tmp/digitflow
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin digitflow
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY . /app
USER 10001
# No prefetch hoarding: the Redis list length that KEDA scales on must show the real backlog.
CMD ["celery", "-A", "worker.celery_app", "worker", "--loglevel=INFO", "--concurrency=2", \
     "--prefetch-multiplier=1", "-O", "fair"]

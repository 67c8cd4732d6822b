# DigitFlow API image: FastAPI + LiteRT inference (no TensorFlow).
# Build from the repository root:  docker build -f infra/docker/api.Dockerfile -t digitflow-api .

FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Dependencies first, read from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml .
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['api']))" > requirements.txt \
 && pip install -r requirements.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_DIR=/app/models/default \
    DATA_DIR=/tmp/digitflow
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin digitflow
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# Code, migrations, web pages and the default model; root-owned, so the process cannot change them.
COPY . /app
RUN chmod 0755 /app/infra/docker/prestart.sh
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]

#!/bin/sh
# Prestart: wait until the database answers, then apply migrations (alembic upgrade head).
# Run once per release: by the `prestart` service in docker-compose.yml and by the
# digitflow-migrate Job on Kubernetes, never by every API or worker process.
set -eu
cd /app
python - <<'PY'
import os
import time

from sqlalchemy import create_engine, text

deadline = time.monotonic() + float(os.environ.get("DB_WAIT_SECONDS", "120"))
engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
while True:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        break
    except Exception as exc:  # any connection error: the database is not up yet
        if time.monotonic() > deadline:
            raise SystemExit(f"database not reachable: {exc}")
        print(f"waiting for the database: {exc.__class__.__name__}", flush=True)
        time.sleep(2)
PY
exec alembic upgrade head

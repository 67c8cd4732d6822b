"""What the jobs endpoints need: a database session, object storage, a Celery producer; and the
readiness checks for the database and the broker."""

from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

from celery import Celery
from fastapi import Depends, FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.config import Settings
from api.deps import SettingsDep
from digitflow.db import Job, make_sessionmaker
from digitflow.storage import Storage, make_storage
from worker.celery_app import producer_for


def get_sessions(settings: SettingsDep) -> sessionmaker[Session]:
    return make_sessionmaker(settings.resolved_database_url)


def get_session(
    sessions: Annotated[sessionmaker[Session], Depends(get_sessions)],
) -> Iterator[Session]:
    with sessions() as session:
        yield session


@lru_cache(maxsize=4)
def _storage(settings_json: str) -> Storage:
    return make_storage(Settings.model_validate_json(settings_json))


def get_storage(settings: SettingsDep) -> Storage:
    return _storage(settings.model_dump_json())


def get_producer(settings: SettingsDep) -> Celery:
    return producer_for(settings)


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
SessionDep = Annotated[Session, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ProducerDep = Annotated[Celery, Depends(get_producer)]


def database_ready(app: FastAPI) -> str | None:
    """The database answers and is migrated (the jobs table exists)."""
    settings = app.state.settings
    try:
        with make_sessionmaker(settings.resolved_database_url)() as session:
            session.execute(select(Job.id).limit(0))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        return f"database unusable (not reachable, or not migrated: run `digitflow migrate`): {exc}"
    return None


def broker_ready(app: FastAPI) -> str | None:
    producer = producer_for(app.state.settings)
    try:
        with producer.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=1)  # 0: no retries
    except Exception as exc:  # noqa: BLE001
        return f"broker unreachable: {exc}"
    return None

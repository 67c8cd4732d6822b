"""Annotated dependency aliases: what an endpoint needs, named once.

Everything here was built once, in the app's lifespan (api.main), and lives on `app.state`:
routes never build clients or read `app.state` themselves. Lookups are `async def`: FastAPI runs
a plain `def` dependency in its threadpool, a thread hop (~0.1 ms of CPU, more on a busy
machine) per dependency per request for what is a dict lookup.
"""

from collections.abc import Iterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from api.config import Settings
from api.errors import ModelUnavailable
from api.predict.batcher import MicroBatcher
from digitflow.storage import Storage, make_storage
from recognition import Recognizer


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def recognizer_of(request: Request) -> Recognizer:
    recognizer = request.app.state.recognizer
    if recognizer is None:
        raise ModelUnavailable(request.app.state.model_error or "still loading")
    return recognizer


def batcher_of(request: Request) -> MicroBatcher:
    recognizer_of(request)
    return request.app.state.batcher


async def get_recognizer(request: Request) -> Recognizer:
    return recognizer_of(request)


async def get_batcher(request: Request) -> MicroBatcher:
    return batcher_of(request)


async def get_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


def get_session(
    sessions: Annotated[sessionmaker[Session], Depends(get_sessions)],
) -> Iterator[Session]:
    with sessions() as session:
        yield session


def get_storage(request: Request) -> Storage:
    state = request.app.state
    if state.storage is None:  # the store was down at start-up: open it now (or answer 503)
        state.storage = make_storage(state.settings)
    return state.storage


async def get_producer(request: Request) -> Celery:
    return request.app.state.producer


SettingsDep = Annotated[Settings, Depends(get_settings)]
RecognizerDep = Annotated[Recognizer, Depends(get_recognizer)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
SessionDep = Annotated[Session, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ProducerDep = Annotated[Celery, Depends(get_producer)]

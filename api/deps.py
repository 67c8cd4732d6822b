"""Annotated dependency aliases: what an endpoint needs, named once."""

from typing import Annotated

from fastapi import Depends, Request

from api.config import Settings
from api.errors import ModelUnavailable
from api.predict.batcher import MicroBatcher
from recognition import Recognizer


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_recognizer(request: Request) -> Recognizer:
    recognizer = request.app.state.recognizer
    if recognizer is None:
        raise ModelUnavailable(request.app.state.model_error or "still loading")
    return recognizer


def get_batcher(request: Request) -> MicroBatcher:
    get_recognizer(request)
    return request.app.state.batcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
RecognizerDep = Annotated[Recognizer, Depends(get_recognizer)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]

"""What the review endpoints need beyond the shared dependencies."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends

from api.deps import SettingsDep


def lease_length(settings: SettingsDep) -> timedelta:
    return timedelta(seconds=settings.review_lease_seconds)


def utc_now() -> datetime:
    return datetime.now(UTC)


LeaseDep = Annotated[timedelta, Depends(lease_length)]
NowDep = Annotated[datetime, Depends(utc_now)]

"""The one SQLAlchemy 2 model layer shared by the API and the workers."""

from digitflow.db.models import (
    ApiKey,
    Base,
    Document,
    DocumentStatus,
    Job,
    JobLayout,
    JobStatus,
    Prediction,
    ReviewDecision,
    ReviewKeying,
    ReviewStatus,
    ReviewTask,
)
from digitflow.db.session import make_engine, make_sessionmaker

__all__ = [
    "ApiKey",
    "Base",
    "Document",
    "DocumentStatus",
    "Job",
    "JobLayout",
    "JobStatus",
    "Prediction",
    "ReviewDecision",
    "ReviewKeying",
    "ReviewStatus",
    "ReviewTask",
    "make_engine",
    "make_sessionmaker",
]

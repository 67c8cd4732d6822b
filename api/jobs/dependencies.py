"""What the jobs endpoints need beyond the shared dependencies: an existing job of the caller."""

import uuid
from typing import Annotated

from fastapi import Depends, Path

from api.auth.dependencies import PrincipalDep
from api.deps import SessionDep
from api.jobs import service
from api.jobs.errors import JobNotFound
from digitflow.db import Job

JobId = Annotated[uuid.UUID, Path(description="the job id returned by POST /jobs")]


def valid_job(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> Job:
    """The job, if it exists and belongs to the caller's tenant; another tenant's job is 404."""
    job = service.get_job(session, job_id, principal.tenant_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


ValidJob = Annotated[Job, Depends(valid_job)]

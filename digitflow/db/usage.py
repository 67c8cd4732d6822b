"""Storage use, from the database: what the API shows and the workers export as metrics."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digitflow.db.models import Document, Job


def storage_use(session: Session, tenant_id: str | None = None) -> dict:
    """Documents and bytes held in storage (images not yet purged), and jobs, for a tenant or
    for everyone."""
    query = (
        select(func.count(Document.id), func.coalesce(func.sum(Document.size), 0))
        .join(Job, Job.id == Document.job_id)
        .where(Job.images_deleted_at.is_(None))
    )
    jobs = select(func.count(Job.id))
    if tenant_id is not None:
        query, jobs = (
            query.where(Job.tenant_id == tenant_id),
            jobs.where(Job.tenant_id == tenant_id),
        )
    documents, stored_bytes = session.execute(query).one()
    return {"jobs": session.scalar(jobs), "documents": documents, "stored_bytes": int(stored_bytes)}

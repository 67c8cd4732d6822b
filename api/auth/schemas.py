"""What the key-management endpoints take and answer. Secrets never appear after creation."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from digitflow.auth import Role


class KeyCreate(BaseModel):
    role: Role = Field(description="submitter, reviewer or admin (operator: the CLI only)")
    name: str = Field(default="", max_length=200, description="what the key is for")
    tenant: str | None = Field(
        default=None, max_length=64, description="operators only: the tenant of the new key"
    )


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key_id: str = Field(description="the key's public id (its second part)")
    tenant_id: str
    role: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="updated at most once a minute")
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the whole key: shown this once, never stored")


class KeyList(BaseModel):
    items: list[KeyPublic]

from pydantic import BaseModel, Field


class FieldRegionPublic(BaseModel):
    name: str = Field(description="1-16 characters: a-z, 0-9, _ (a letter first)")
    kind: str = Field(description="digits (a field of digits), amount, or digit (one digit)")
    region: list[float] | None = Field(
        None, description="x, y, width, height as shares of the page (0-1), from the top left"
    )
    locate: str | None = Field(None, description="courtesy_amount: found on the page instead")


class DocumentTypePublic(BaseModel):
    name: str
    description: str = ""
    primary: str = Field(description="the field whose text is the document's `text`")
    builtin: bool = False
    fields: list[FieldRegionPublic]


class DocumentTypeList(BaseModel):
    items: list[DocumentTypePublic]

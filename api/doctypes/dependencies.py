from typing import Annotated

from fastapi import Depends, Request

from recognition.doctypes import DocumentTypes


def get_document_types(request: Request) -> DocumentTypes:
    return request.app.state.document_types


DocumentTypesDep = Annotated[DocumentTypes, Depends(get_document_types)]

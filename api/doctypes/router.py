"""Document types: GET /document-types (anyone), PUT /document-types/{name} (admins).

A registered type is a JSON definition file in DOCUMENT_TYPES_DIR (recognition.doctypes), so
a deployment can also ship its types as files; `layout=<name>` then reads every field of it.
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth.dependencies import AdminDep, PrincipalDep
from api.doctypes.dependencies import DocumentTypesDep
from api.doctypes.schemas import DocumentTypeList, DocumentTypePublic
from api.doctypes.service import register, unknown_document_type
from api.limits import check_content_type, read_body
from api.predict.schemas import ErrorPublic

router = APIRouter(prefix="/document-types", tags=["document types"])

# A definition is a few hundred bytes; this is generous.
MAX_DEFINITION_BYTES = 64 * 1024


@router.get("", response_model=DocumentTypeList, summary="The document types layout= accepts")
def list_types(types: DocumentTypesDep, principal: PrincipalDep) -> dict:
    return {"items": [t.as_dict() for t in types.all()]}


@router.get(
    "/{name}",
    response_model=DocumentTypePublic,
    responses={404: {"model": ErrorPublic}},
    summary="One document type",
)
def get_type(name: str, types: DocumentTypesDep, principal: PrincipalDep) -> dict:
    found = types.get(name)
    if found is None:
        raise unknown_document_type(name)
    return found.as_dict()


@router.put(
    "/{name}",
    response_model=DocumentTypePublic,
    status_code=201,
    responses={
        200: {"model": DocumentTypePublic, "description": "an existing type was replaced"},
        403: {"model": ErrorPublic},
        409: {"model": ErrorPublic, "description": "a built-in type"},
        422: {"model": ErrorPublic, "description": "the definition is not usable (detail)"},
    },
    summary="Register or replace a document type (admins)",
)
async def put_type(
    name: str, request: Request, types: DocumentTypesDep, principal: AdminDep
) -> Response:
    check_content_type(request, "application/json")
    body = await read_body(request, MAX_DEFINITION_BYTES)
    doc_type, replaced = await run_in_threadpool(register, types, name, body)
    return JSONResponse(doc_type.as_dict(), status_code=200 if replaced else 201)

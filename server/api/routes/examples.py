"""Examples: pages of a revision, one example with its edit version, and input media (content-addressed)."""

from fastapi import APIRouter, Query, Request, Response

from server.api.deps import CurrentUser, blob_store, read
from server.api.pagination import Cursor, Limit, Page, cursor_str, page_from
from server.api.routing import OffLoopRoute
from server.auth.policy import require_reader
from server.blobs.base import BLOB_ID
from server.datasets.datasets import get_dataset
from server.datasets.examples import get_example, list_examples
from server.datasets.media import input_modality, media_type
from server.datasets.schemas import ExampleRead
from server.errors import NotFound

router = APIRouter(tags=["examples"], route_class=OffLoopRoute)
IMMUTABLE = "private, max-age=31536000, immutable"  # a blob id is the hash of its bytes: they never change


@router.get("/datasets/{name}/examples", summary="Examples at a revision, in key order")
def list_(
    name: str,
    who: CurrentUser,
    rev: str | None = Query(None, description="Default: the default branch"),
    label: str | None = Query(None, description="Only examples with this label"),
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[ExampleRead]:
    require_reader(who, name)
    store = blob_store()
    after = cursor_str(cursor)
    found = read(lambda db: list_examples(db, store, dataset=name, rev=rev, after=after, limit=limit + 1, label=label))
    return page_from(found, limit, lambda e: e.key)


@router.get("/datasets/{name}/examples/{key:path}", summary="One example; on a branch with its staged edit and `version`")
def get(name: str, key: str, who: CurrentUser, rev: str | None = Query(None, description="Default: the default branch")) -> ExampleRead:
    require_reader(who, name)
    store = blob_store()
    return read(lambda db: get_example(db, store, dataset=name, key=key, rev=rev))


@router.get(
    "/datasets/{name}/media/{blob_id}",
    summary="An example's input bytes (image, text or features), cacheable forever",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "text/plain": {}, "application/json": {}}}, 304: {"description": "Not modified"}},
)
def media(name: str, blob_id: str, who: CurrentUser, request: Request) -> Response:
    require_reader(who, name)
    if not BLOB_ID.match(blob_id):
        read(lambda db: get_dataset(db, name))  # an unknown dataset is named first
        raise NotFound(f"no input '{blob_id}': an input id is 64 lowercase hex digits (an example's `input`)")
    modality = read(lambda db: input_modality(db, name, blob_id))
    return serve_input(blob_id, modality, request, IMMUTABLE)


def serve_input(blob_id: str, modality: str, request: Request, cache_control: str) -> Response:
    """An input's bytes with their content type and ETag, or 304 when the client holds them (every media route)."""
    store = blob_store()
    etag = f'"{blob_id}"'
    if request.headers.get("if-none-match") == etag and store.exists(blob_id):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    if not store.exists(blob_id):
        raise NotFound(f"no input '{blob_id}' in the blob store")
    data = store.get(blob_id)
    return Response(data, media_type=media_type(data, modality), headers={"ETag": etag, "Cache-Control": cache_control})

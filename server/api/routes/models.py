"""Model versions: list, describe, compare, promote; pinned evaluation sets."""

from fastapi import APIRouter, Query

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_int, cursor_str, encode_cursor, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import EvalPinCreate, EvalPinRead, ModelComparison, PromoteRead, PromoteRequest
from server.auth.policy import require_engineer, require_reader
from server.config import get_settings
from server.errors import InvalidInput
from server.registry import compare as comparing
from server.registry import examples as scored
from server.registry import service
from server.registry.schemas import ModelExample
from server.runs.schemas import ModelRead

router = APIRouter(tags=["models"], route_class=OffLoopRoute)


def _dataset_of(ref: str) -> str:
    if "@" not in ref:
        raise InvalidInput(f"invalid model reference {ref!r}: use DATASET@VERSION (e.g. digits@3), DATASET@latest or DATASET@production")
    return ref.split("@", 1)[0]


@router.get("/datasets/{name}/models", summary="A dataset's model versions, newest first")
def list_models(name: str, who: CurrentUser, cursor: Cursor = None, limit: Limit = 50) -> Page[ModelRead]:
    require_reader(who, name)
    before = cursor_int(cursor)
    found = read(lambda db: service.list_models(db, dataset=name, before=before, limit=limit + 1))
    return page_from(found, limit, lambda m: m.version)


@router.get("/models/{ref}", summary="One model version: DATASET@N, DATASET@latest or DATASET@STAGE")
def get_model(ref: str, who: CurrentUser) -> ModelRead:
    require_reader(who, _dataset_of(ref))
    return read(lambda db: service.model_read(db, service.get_model(db, ref)))


@router.get(
    "/models/{ref}/examples",
    summary="The examples a model was scored on, by label and prediction: a confusion matrix cell's examples, paged",
)
def model_examples(
    ref: str,
    who: CurrentUser,
    eval_set: str = Query("eval", description="The eval set (`eval`, or a pinned set's name)"),
    label: str | None = Query(None, description="Only examples with this label (the matrix row); omit for any"),
    predicted: str | None = Query(None, description="Only examples the model predicted this for (the matrix column); omit for any"),
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[ModelExample]:
    require_reader(who, _dataset_of(ref))
    store = blob_store()
    after = cursor_str(cursor)
    found = read(
        lambda db: scored.cell_examples(
            db, store, ref=ref, eval_set=eval_set, label=label, predicted=predicted, after=after, limit=limit + 1
        )
    )
    for source in {e.dataset for e in found}:  # a pinned set from another dataset shows that dataset's examples
        require_reader(who, source)
    return page_from(found, limit, lambda e: e.key)


@router.get("/compare", summary="Compare two model versions like builds: figures, and a page of the examples that flipped")
def compare(
    who: CurrentUser,
    a: str = Query(description="Model A, e.g. digits@1"),
    b: str = Query(description="Model B, e.g. digits@2"),
    eval_set: str | None = Query(None, description="The eval set whose flips to list (default: eval)"),
    cursor: Cursor = None,
    limit: Limit = 1000,
) -> ModelComparison:
    require_reader(who, _dataset_of(a))
    require_reader(who, _dataset_of(b))
    store = blob_store()
    after = cursor_str(cursor)
    result = read(lambda db: comparing.compare(db, store, ref_a=a, ref_b=b, eval_set=eval_set, after=after, limit=limit))
    return ModelComparison.model_validate(
        {**result, "next_cursor": encode_cursor(result["next_cursor"]) if result["next_cursor"] else None}
    )


@router.post(
    "/models/{ref}/promote",
    summary="Move a model to a stage (production refuses a regression on a pinned eval set: 409)",
    responses=problems.CONFLICT,
)
def promote(ref: str, body: PromoteRequest, who: CurrentUser) -> PromoteRead:
    require_engineer(who, "promote models")
    limit = get_settings().promote_max_regression
    # The audit names the model moved (digits@3), not the reference given (digits@latest), which moves on.
    return write(
        who,
        "model.promote",
        lambda r: r["model"],
        lambda db: comparing.promote(db, ref=ref, stage=body.stage, max_regression=limit, force=body.force, by=who.name),
        detail=lambda r: {"stage": r["stage"], "replaced": r["replaced"], "force": body.force},
    )


@router.post("/datasets/{name}/eval-pins", summary="Pin an evaluation set that every model of the dataset is scored on")
def pin_eval(name: str, body: EvalPinCreate, who: CurrentUser) -> EvalPinRead:
    require_engineer(who, "pin evaluation sets")
    return write(
        who,
        "eval.pin",
        f"{name}/{body.name}",
        lambda db: service.pin_eval(
            db, dataset=name, name=body.name, source=body.source, rev=body.rev, only_eval_split=body.only_eval_split
        ),
    )

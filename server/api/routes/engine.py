"""The data engine over REST: a model's analysis, and accepting or keeping its suggestions."""

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.routing import OffLoopRoute
from server.auth.policy import editable_branch, require_reader

router = APIRouter(tags=["data engine"], route_class=OffLoopRoute)


class AnalysisOut(BaseModel):
    """What the workers learned of a model's data after training it (null fields: not yet, or not run)."""

    model: str
    state: str = Field(description="running, done or failed")
    folds: int = Field(description="fold models cross-fitted (0: none, only the model's own pass)")
    labeled: int | None = Field(description="labeled examples given out-of-sample probabilities")
    examples: int | None = Field(description="examples given probabilities and an embedding by the model")
    crossfit_s: float | None = Field(description="seconds the fold models took")
    analysis_s: float | None = Field(description="seconds of the model's pass over every example and the queues' ranking")
    error: str | None
    queues: dict[str, int] = Field(description="items this model put in each of the engine's queues")


class KeysIn(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=1000)


class Accepted(BaseModel):
    key: str
    label: str
    was: str | None
    source: str


class Kept(BaseModel):
    kept: int


class Neighbour(BaseModel):
    key: str
    label: str | None = Field(description="its label when the model was trained")
    similarity: float = Field(description="cosine similarity of the model's embeddings, 1 the most alike")


@router.get(
    "/models/{ref}/analysis",
    summary="A model's data-engine analysis: cross-fitting, its cost, what it queued",
    responses=problems.responses(404),
)
def model_analysis(ref: str, who: CurrentUser) -> AnalysisOut:
    from server.engine.service import analysis_of
    from server.errors import NotFound
    from server.registry.service import get_model

    def get(db):
        model = get_model(db, ref)
        require_reader(who, ref.split("@", 1)[0])
        found = analysis_of(db, model)
        if found is None:
            raise NotFound(f"model {ref} has no analysis: it ran with folds 0 and no examples, or before the data engine")
        return found

    return AnalysisOut(**read(get).__dict__)


@router.post(
    "/datasets/{name}/queues/{queue}/accept",
    summary="Accept the engine's suggestions: stage each key's suggested label with its provenance",
    responses=problems.responses(409),
)
def accept(
    name: str, queue: str, body: KeysIn, who: CurrentUser, branch: str | None = Query(None, description="Default: the default branch")
) -> list[Accepted]:
    from server.engine.service import accept_suggestions

    require_reader(who, name)
    store = blob_store()

    def stage(db):
        br = editable_branch(db, who, name, branch)
        return br, accept_suggestions(db, store, dataset=name, queue=queue, keys=body.keys, branch=br, author=who.name)

    done = write(who, "engine.accept", lambda r: f"{name}/{r[0]}", stage, detail=lambda r: {"keys": [a["key"] for a in r[1]][:100]})[1]
    return [Accepted(**a) for a in done]


@router.get(
    "/datasets/{name}/queues/{queue}/neighbours",
    summary="The examples most like a queued one, by the embeddings of the model that queued it",
    responses=problems.responses(404),
)
def queue_neighbours(
    name: str, queue: str, who: CurrentUser, key: str = Query(..., max_length=512), k: int = Query(5, ge=1, le=50)
) -> list[Neighbour]:
    from server.engine.service import neighbours

    require_reader(who, name)
    store = blob_store()
    return [Neighbour(**n) for n in read(lambda db: neighbours(db, store, dataset=name, queue=queue, key=key, k=k))]


@router.post("/datasets/{name}/queues/{queue}/keep", summary="Keep the given labels: the engine does not suggest another for them again")
def keep(name: str, queue: str, body: KeysIn, who: CurrentUser) -> Kept:
    from server.engine.service import keep_labels

    require_reader(who, name)
    kept = write(who, "engine.keep", f"{name}/{queue}", lambda db: keep_labels(db, dataset=name, queue=queue, keys=body.keys, by=who.name))
    return Kept(kept=kept)


class ExampleLineage(BaseModel):
    model: str
    commit: str
    present: bool = Field(description="the example existed at the model's commit")
    label: str | None = Field(description="its label then")
    side: str | None = Field(description="train or eval (null: absent or unlabeled then)")
    trained_on: bool


class MovingCommit(BaseModel):
    commit: str
    message: str
    author: str
    edited: int = Field(description="examples the commit changed")
    moved: int = Field(description="of those, the ones whose predicted class differs between the two models")
    keys: list[str] = Field(description="the first of them")


class ModelLineage(BaseModel):
    model: str
    before: str | None = Field(description="the model before it (null: the first)")
    moved: int = Field(description="examples whose predicted class differs between the two models")
    commits: list[MovingCommit]


@router.get(
    "/datasets/{name}/lineage",
    summary="Which models trained on an example, and the label it had for each",
    responses=problems.responses(404),
)
def example_lineage(name: str, who: CurrentUser, key: str = Query(..., max_length=512)) -> list[ExampleLineage]:
    from server.engine.lineage import example_lineage as lineage

    require_reader(who, name)
    store = blob_store()
    return [ExampleLineage(**e) for e in read(lambda db: lineage(db, store, dataset=name, key=key))]


@router.get(
    "/models/{ref}/lineage",
    summary="The commits whose edits moved a model's predictions against the model before",
    responses=problems.responses(404),
)
def model_lineage(ref: str, who: CurrentUser) -> ModelLineage:
    from server.engine.lineage import model_lineage as lineage

    require_reader(who, ref.split("@", 1)[0])
    store = blob_store()
    return ModelLineage(**read(lambda db: lineage(db, store, ref=ref)))


class PredictionIn(BaseModel):
    """What a deployed model predicted for one example: an existing one (key) or a new input (text, features or image_base64)."""

    predicted: str = Field(max_length=256)
    probabilities: list[float] | None = Field(None, max_length=1000, description="in the dataset's label order; they must sum to 1")
    key: str | None = Field(None, max_length=512)
    text: str | None = Field(None, max_length=100_000)
    features: dict | None = None
    image_base64: str | None = Field(None, max_length=700_000)


class PredictionsIn(BaseModel):
    model: str = Field(max_length=200, description="the deployed model: DATASET@N or DATASET@production")
    items: list[PredictionIn] = Field(min_length=1, max_length=1000)


class PredictionsOut(BaseModel):
    received: int
    new_examples: int = Field(description="new inputs that landed as unlabeled examples")
    commit: str | None = Field(description="the commit that added them (null: none were new)")
    disagreements: int = Field(description="existing examples queued in the `production` review queue")


@router.post(
    "/datasets/{name}/predictions",
    summary="Feedback from production: a deployed model's predictions; new inputs become unlabeled examples, disagreements are queued",
    responses=problems.responses(404, 422),
)
def post_predictions(
    name: str, body: PredictionsIn, who: CurrentUser, branch: str | None = Query(None, description="Default: the default branch")
) -> PredictionsOut:
    from server.auth.policy import require_engineer
    from server.db import run_in_transaction
    from server.engine.feedback import Prediction, record_predictions

    require_engineer(who, "post predictions")
    store = blob_store()
    items = [Prediction(**i.model_dump()) for i in body.items]
    done = record_predictions(run_in_transaction, store, dataset=name, model=body.model, items=items, branch=branch, author=who.name)
    write(
        who, "engine.predictions", name, lambda db: done, detail=lambda r: {k: r[k] for k in ("received", "new_examples", "disagreements")}
    )
    return PredictionsOut(**done)


class ConsensusIn(BaseModel):
    votes: int = Field(ge=2, le=20, description="independent labels each example needs")
    branch: str | None = Field(None, max_length=128, description="where agreed labels are staged (default: the default branch)")


class VoteIn(BaseModel):
    key: str = Field(max_length=512)
    label: str = Field(max_length=256)


class ResolveIn(VoteIn):
    branch: str | None = Field(None, max_length=128)


@router.put("/datasets/{name}/queues/{queue}/consensus", summary="Make a review queue ask for N independent labels per example (engineer)")
def set_consensus(name: str, queue: str, body: ConsensusIn, who: CurrentUser) -> dict:
    from server.auth.policy import require_engineer
    from server.engine.consensus import require_votes

    require_engineer(who, "set up consensus labeling")
    return write(
        who,
        "consensus.set",
        f"{name}/{queue}",
        lambda db: require_votes(db, dataset=name, queue=queue, required=body.votes, branch=body.branch, by=who.name),
    )


@router.post(
    "/datasets/{name}/queues/{queue}/votes",
    summary="Vote a label for a queued example; answers counts only (labelers do not see each other's votes)",
    responses=problems.responses(404),
)
def vote(name: str, queue: str, body: VoteIn, who: CurrentUser) -> dict:
    from server.engine.consensus import cast_vote

    require_reader(who, name)
    store = blob_store()
    return write(
        who,
        "consensus.vote",
        f"{name}/{queue}",
        lambda db: cast_vote(db, store, dataset=name, queue=queue, key=body.key, label=body.label, labeler=who.name),
    )


@router.post(
    "/datasets/{name}/disputes/resolve", summary="Pick the label of an example its labelers disagreed on", responses=problems.responses(404)
)
def resolve(name: str, body: ResolveIn, who: CurrentUser) -> dict:
    from server.engine.consensus import resolve_dispute

    require_reader(who, name)
    store = blob_store()

    def work(db):
        br = editable_branch(db, who, name, body.branch) if body.branch else None
        return resolve_dispute(db, store, dataset=name, key=body.key, label=body.label, by=who.name, branch=br)

    return write(who, "consensus.resolve", name, work)


@router.get(
    "/datasets/{name}/queues/{queue}/agreement", summary="How far a consensus queue's labelers agree", responses=problems.responses(404)
)
def agreement(name: str, queue: str, who: CurrentUser) -> dict:
    from server.auth.policy import require_engineer
    from server.engine.consensus import queue_agreement

    require_engineer(who, "read labelers' agreement")
    return read(lambda db: queue_agreement(db, dataset=name, queue=queue))


class SliceIn(BaseModel):
    name: str = Field(max_length=64)
    keys: list[str] | None = Field(None, max_length=10_000, description="the slice's examples (or give query)")
    query: str | None = Field(None, max_length=2000, description="label = 3, label in (3, 5), meta.source = web, joined by 'and'")
    rev: str | None = Field(None, max_length=200, description="read the slice at this revision (default: each model's own commit)")
    minimum: float = Field(ge=0, le=1, description="the accuracy a model must reach on it")


@router.post(
    "/datasets/{name}/slices",
    summary="Add (or replace) a data unit test: a slice and its minimum accuracy (engineer)",
    responses=problems.responses(422),
)
def add_slice(name: str, body: SliceIn, who: CurrentUser) -> dict:
    from server.auth.policy import require_engineer
    from server.engine.slices import add_slice as add

    require_engineer(who, "define data unit tests")
    store = blob_store()
    return write(
        who,
        "slice.add",
        f"{name}/{body.name}",
        lambda db: add(
            db, store, dataset=name, name=body.name, keys=body.keys, query=body.query, rev=body.rev, minimum=body.minimum, by=who.name
        ),
    )


@router.get("/datasets/{name}/slices", summary="A dataset's data unit tests, each with its newest model's score")
def slices(name: str, who: CurrentUser) -> list[dict]:
    from server.engine.slices import list_slices

    require_reader(who, name)
    return read(lambda db: list_slices(db, dataset=name))


@router.delete("/datasets/{name}/slices/{slice_name}", status_code=204, summary="Remove a data unit test (engineer)")
def remove_slice(name: str, slice_name: str, who: CurrentUser) -> None:
    from server.auth.policy import require_engineer
    from server.engine.slices import remove_slice as remove

    require_engineer(who, "remove data unit tests")
    write(who, "slice.remove", f"{name}/{slice_name}", lambda db: remove(db, dataset=name, name=slice_name))

"""Model versions: the list, the compare page of two versions (metrics, per class, confusion, flips), and the
examples behind one confusion cell.

URLs: `/d/NAME/models`, `/d/NAME/compare/A...B` (A and B: a version `3`, `latest`, a stage, or `NAME@3`),
`/d/NAME/models/M/examples?eval_set=&label=&predicted=`. Reads go through the registry's services (the
ones the REST API calls); promoting is a POST to the REST API from server/dashboards/static/compare.js.
"""

import math
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from server.api.deps import blob_store, read
from server.api.pagination import cursor_int, cursor_str, encode_cursor, page_from
from server.auth.policy import ENGINEERING, require_reader
from server.auth.schemas import Principal
from server.datasets.datasets import dataset_read, get_dataset
from server.datasets.schemas import DatasetRead
from server.errors import NotFound
from server.registry.schemas import ExampleInput, ModelExample
from server.registry.service import MODEL_REF, get_model, list_models, model_read
from server.runs.schemas import ModelRead
from server.web.pages import PageRoute, page_user
from server.web.render import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(page_user)]
MODELS_PAGE = 50
FLIPS_PAGE = 50
EXAMPLES_PAGE = 60


def model_ref(dataset: str, given: str) -> str:
    """A model as a URL names it (`3`, `production`, `digits@3`) as a reference of this dataset; NotFound otherwise."""
    which = given.strip()
    if "@" in which:
        owner, _, which = which.partition("@")
        if owner != dataset:
            raise NotFound(f"model '{given}' is not a model of dataset '{dataset}'")
    ref = f"{dataset}@{which}"
    if not MODEL_REF.match(ref):
        raise NotFound(f"no model '{given}' in dataset '{dataset}': name one by its version (3), latest, production or staging")
    return ref


def model_pair(dataset: str, spec: str) -> tuple[str, str]:
    """The two models of a compare URL's `A...B` segment."""
    a, sep, b = spec.partition("...")
    if not sep or not a or not b:
        raise NotFound(f"no comparison '{spec}': name two models as A...B, e.g. /d/{dataset}/compare/1...2")
    return model_ref(dataset, a), model_ref(dataset, b)


def _is_pair(dataset: str, spec: str) -> bool:
    try:
        model_pair(dataset, spec)
    except NotFound:
        return False
    return True


def cell_url(dataset: str, version: int, eval_set: str, label: str | None, predicted: str | None, back: str | None = None) -> str:
    """The page of a model's examples with that label and prediction (one confusion cell); back: the compare page's A...B."""
    query = {
        "eval_set": eval_set,
        **({"label": label} if label is not None else {}),
        **({"predicted": predicted} if predicted is not None else {}),
        **({"from": back} if back else {}),
    }
    return f"/d/{quote(dataset, safe='')}/models/{version}/examples?{urlencode(query)}"


@dataclass
class ModelRow:
    model: ModelRead
    previous: ModelRead | None  # the version before it, to compare with and to show the metric's change
    slices: list[dict] = field(default_factory=list)  # its data unit tests: slice, score, minimum, passed, failing keys


@router.get("/d/{name}/models")
def models(request: Request, name: str, who: SignedIn, cursor: str | None = Query(None)) -> Response:
    """A dataset's model versions, newest first, a page at a time (as GET /api/v1/datasets/NAME/models)."""
    require_reader(who, name)
    before = cursor_int(cursor)
    from server.engine.slices import slices_of_models

    def load(db):
        found = list_models(db, dataset=name, before=before, limit=MODELS_PAGE + 1)
        return dataset_read(get_dataset(db, name)), found, slices_of_models(db, dataset=name, versions=[m.version for m in found])

    dataset, found, slices = read(load)
    rows = [ModelRow(m, found[i + 1] if i + 1 < len(found) else None, slices.get(m.version, [])) for i, m in enumerate(found[:MODELS_PAGE])]
    return page(
        request,
        "models.html",
        title=f"Models · {name}",
        dataset=dataset,
        rows=rows,
        first_page=cursor is None,
        next_cursor=page_from(found, MODELS_PAGE, lambda m: m.version).next_cursor,
    )


@router.get("/d/{name}/compare")
def compare_form(name: str, who: SignedIn, a: str = Query(...), b: str = Query(...)) -> Response:
    """The models list's compare form: off to /d/NAME/compare/A...B."""
    require_reader(who, name)
    return RedirectResponse(f"/d/{quote(name, safe='')}/compare/{quote(a, safe='@')}...{quote(b, safe='@')}", status_code=303)


@dataclass
class Cell:
    text: str
    shade: str = ""  # a CSS class: how strongly the cell is coloured, and in which sense
    href: str | None = None
    title: str = ""


@dataclass
class Matrix:
    caption: str
    hint: str
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)


def _level(value: int, top: int) -> int:
    """1..4: how large a count is against the matrix's largest (0 for none)."""
    return 0 if not value or not top else max(1, math.ceil(4 * abs(value) / top))


def model_matrix(dataset: str, model: ModelRead, eval_set: str, labels: list[str], cm: list[list[int]], which: str, back: str) -> Matrix:
    """A model's confusion matrix, each non-empty cell a link to its examples."""
    top = max((v for row in cm for v in row), default=0)
    matrix = Matrix(f"Model {which}: {model.id}", "rows: the label; columns: what the model predicted")
    for i, truth in enumerate(labels):
        cells = []
        for j, guess in enumerate(labels):
            value, kind = cm[i][j], "hit" if i == j else "miss"
            href = cell_url(dataset, model.version, eval_set, truth, guess, back) if value else None
            cells.append(
                Cell(str(value), f"{kind}{_level(value, top)}" if value else "zero", href, f"{value} labeled {truth}, predicted {guess}")
            )
        matrix.rows.append((truth, cells))
    return matrix


def difference_matrix(
    dataset: str, a: ModelRead, b: ModelRead, eval_set: str, labels: list[str], cm_a: list, cm_b: list, back: str
) -> Matrix:
    """B minus A per cell: green where B got more right (or fewer wrong), red the other way; links to B's examples."""
    diff = [[cm_b[i][j] - cm_a[i][j] for j in range(len(labels))] for i in range(len(labels))]
    top = max((abs(v) for row in diff for v in row), default=0)
    matrix = Matrix(f"Difference: {b.id} minus {a.id}", "green: B does better there; red: worse")
    for i, truth in enumerate(labels):
        cells = []
        for j, guess in enumerate(labels):
            d = diff[i][j]
            better = (d > 0) == (i == j)
            shade = "zero" if d == 0 else f"{'gain' if better else 'loss'}{_level(d, top)}"
            owner = b if cm_b[i][j] else a if cm_a[i][j] else None
            href = cell_url(dataset, owner.version, eval_set, truth, guess, back) if owner else None
            title = f"labeled {truth}, predicted {guess}: {cm_a[i][j]} by {a.id}, {cm_b[i][j]} by {b.id}"
            cells.append(Cell(f"{d:+d}" if d else "0", shade, href, title))
        matrix.rows.append((truth, cells))
    return matrix


@dataclass
class CompareView:
    dataset: DatasetRead
    a: ModelRead
    b: ModelRead
    report: dict  # registry.compare.compare's answer
    inputs: dict[str, ExampleInput]  # each flipped key's input, to show it
    matrices: list[Matrix]
    engineer: bool
    next_cursor: str | None


def compare_view(db, store, who: Principal, name: str, ref_a: str, ref_b: str, eval_set: str | None, after: str | None) -> CompareView:
    """Two models compared (figures, matrices, a page of flips) with the flips' inputs, in one read."""
    from server.registry.compare import compare
    from server.registry.examples import flip_inputs

    dataset = dataset_read(get_dataset(db, name))
    back = f"{ref_a.split('@', 1)[1]}...{ref_b.split('@', 1)[1]}"
    a, b = model_read(db, get_model(db, ref_a), name), model_read(db, get_model(db, ref_b), name)
    report = compare(db, store, ref_a=ref_a, ref_b=ref_b, eval_set=eval_set, after=after, limit=FLIPS_PAGE)
    keys = [f["key"] for f in report["flips"]]
    inputs = flip_inputs(db, store, ref_a=ref_a, ref_b=ref_b, eval_set=report["eval_set"], keys=keys) if keys else {}
    matrices = []
    cm = report["confusion_matrix"]
    if report["eval_set"] is not None:
        for model, which in ((a, "A"), (b, "B")):
            if cm.get(which.lower()):
                matrices.append(model_matrix(name, model, report["eval_set"], dataset.labels, cm[which.lower()], which, back))
        if cm.get("a") and cm.get("b"):
            matrices.append(difference_matrix(name, a, b, report["eval_set"], dataset.labels, cm["a"], cm["b"], back))
    cursor = report["next_cursor"]
    return CompareView(dataset, a, b, report, inputs, matrices, who.role in ENGINEERING, encode_cursor(cursor) if cursor else None)


@router.get("/d/{name}/compare/{spec}")
def compare_page(
    request: Request, name: str, spec: str, who: SignedIn, eval_set: str | None = Query(None), cursor: str | None = Query(None)
) -> Response:
    """Two model versions compared like builds, with the examples each fixed or broke and a way to promote."""
    require_reader(who, name)
    ref_a, ref_b = model_pair(name, spec)
    after = cursor_str(cursor)
    store = blob_store()
    view = read(lambda db: compare_view(db, store, who, name, ref_a, ref_b, eval_set or None, after))
    config = {"dataset": name, "a": view.a.id, "b": view.b.id}
    return page(
        request,
        "compare.html",
        title=f"{view.a.id}...{view.b.id}",
        view=view,
        dataset=view.dataset,
        config=config,
        spec=spec,
        paged=cursor is not None,
    )


@router.get("/d/{name}/models/{model}/examples")
def cell_examples_page(
    request: Request,
    name: str,
    model: str,
    who: SignedIn,
    eval_set: str = Query("eval"),
    label: str | None = Query(None),
    predicted: str | None = Query(None),
    cursor: str | None = Query(None),
    back: str | None = Query(None, alias="from", description="The compare page's A...B this was opened from"),
) -> Response:
    """The examples of an eval set with a given label that a model predicted as given: one confusion cell."""
    from server.registry.examples import cell_examples

    require_reader(who, name)
    ref = model_ref(name, model)
    back = back if back and _is_pair(name, back) else None  # only a comparison of this dataset's models is linked back to
    label, predicted, after = label or None, predicted or None, cursor_str(cursor)
    store = blob_store()

    def work(db) -> tuple[DatasetRead, ModelRead, list[ModelExample]]:
        found = cell_examples(db, store, ref=ref, eval_set=eval_set, label=label, predicted=predicted, after=after, limit=EXAMPLES_PAGE + 1)
        return dataset_read(get_dataset(db, name)), model_read(db, get_model(db, ref), name), found

    dataset, found_model, found = read(work)
    for source in {e.dataset for e in found}:  # a pinned set from another dataset shows that one's examples
        require_reader(who, source)
    listed = page_from(found, EXAMPLES_PAGE, lambda e: e.key)
    cm = (found_model.eval_sets.get(eval_set) or {}).get("confusion_matrix")
    count = None
    if cm and label is not None and predicted is not None:
        count = cm[dataset.labels.index(label)][dataset.labels.index(predicted)]
    return page(
        request,
        "models_examples.html",
        title=f"{found_model.id} examples",
        dataset=dataset,
        model=found_model,
        eval_set=eval_set,
        label=label,
        predicted=predicted,
        count=count,
        examples=listed.items,
        next_cursor=listed.next_cursor,
        paged=cursor is not None,
        back=back,
    )

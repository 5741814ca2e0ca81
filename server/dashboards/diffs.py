"""The diff between two revisions: counts, the from-to matrix of relabels, and the changed examples, paged.

`/d/NAME/diff/A...B` paints the first page of changed examples at once (O(page): the keys come
from the separating deltas in key order); the counts and the matrix need the whole diff
(O(changes), then remembered per pair of commits), so htmx loads them after the page paints
from the same address with `?part=summary`. `?kind=` filters one kind of change, `?from=&to=`
one class pair of relabels (an empty value stands for unlabeled: labels are never empty).
"""

import json
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server.api.deps import blob_store, read
from server.api.pagination import cursor_str, encode_cursor
from server.auth.policy import require_reader
from server.auth.schemas import Principal
from server.datasets.schemas import CommitRead, DatasetRead, DiffExample, DiffKind, DiffSummary
from server.errors import InvalidInput, NotFound
from server.web.pages import PageRoute, page_user
from server.web.render import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(page_user)]

PER_PAGE = 60  # changed examples per page (?limit= asks for another size, up to PAGE_MAX)
PAGE_MAX = 200
SNIPPET = 240  # characters of a text shown on its tile
FEATURES = 4  # cells of a tabular row shown on its tile
MATRIX_MAX = 24  # labels per axis the matrix shows as a grid; past that, the largest pairs as a list
PAIRS_LISTED = 100
KINDS: tuple[DiffKind, ...] = ("added", "removed", "relabeled", "modified")


def split_revisions(spec: str) -> tuple[str, str]:
    """A and B of `A...B`. Names never hold '..', so the last '...' is the separator even when A ends in '.'."""
    a, sep, b = spec.rpartition("...")
    if not sep or not a.strip() or not b.strip():
        raise NotFound(f"'{spec}' does not name two revisions: a diff's address is /d/NAME/diff/A...B (branch, tag, commit, REV~N)")
    return a, b


def shown(label: str | None) -> str:
    """A label as the page writes it."""
    return "unlabeled" if label is None else label


@dataclass
class DiffAddress:
    """What a diff page was asked for, and how to write its links."""

    dataset: str
    a: str
    b: str
    kind: DiffKind | None = None
    pair: tuple[str | None, str | None] | None = None
    limit: int = PER_PAGE

    @property
    def path(self) -> str:
        return f"/d/{quote(self.dataset, safe='')}/diff/{quote(self.a, safe='/~')}...{quote(self.b, safe='/~')}"

    def url(self, *, kind: DiffKind | None = None, pair: tuple[str | None, str | None] | None = None, cursor: str | None = None) -> str:
        """This diff's page filtered to one kind or one class pair (unlabeled written as an empty value)."""
        query: dict[str, str] = {}
        if kind is not None:
            query["kind"] = kind
        if pair is not None:
            query["from"], query["to"] = pair[0] or "", pair[1] or ""
        if self.limit != PER_PAGE:
            query["limit"] = str(self.limit)
        if cursor is not None:
            query["cursor"] = cursor
        return self.path + (f"?{urlencode(query)}" if query else "")

    def history(self, change: DiffExample) -> str:
        """The example's history page at B (at A for an example B no longer has)."""
        rev = self.a if change.kinds == ["removed"] else self.b
        return f"/d/{quote(self.dataset, safe='')}/examples/{quote(change.key, safe='/')}?{urlencode({'rev': rev})}"


@dataclass
class Tile:
    """One changed example as its tile shows it."""

    change: DiffExample
    href: str
    snippet: str | None = None
    features: list[tuple[str, str]] | None = None


@dataclass
class DiffView:
    dataset: DatasetRead
    address: DiffAddress
    commit_a: CommitRead
    commit_b: CommitRead
    tiles: list[Tile]
    next_url: str | None
    first_url: str | None
    kind_links: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, url, current)


def tile_of(address: DiffAddress, modality: str, change: DiffExample) -> Tile:
    """A tile: the image by id, or the start of the text, or the first few cells of a tabular row."""
    tile = Tile(change=change, href=address.history(change))
    if modality == "tabular" and change.text is not None:
        try:
            row = json.loads(change.text)
        except ValueError:
            row = None
        if isinstance(row, dict):
            tile.features = [(str(k), str(v)) for k, v in list(row.items())[:FEATURES]]
            return tile
    if change.text is not None:
        tile.snippet = change.text[:SNIPPET] + ("…" if len(change.text) > SNIPPET else "")
    return tile


def parse_filters(kind: str | None, source: str | None, target: str | None) -> tuple[DiffKind | None, tuple[str | None, str | None] | None]:
    """The kind and class pair asked for; a pair needs both ends and filters relabels only."""
    if kind == "":
        kind = None
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind of change {kind!r}: choose one of {', '.join(KINDS)}")
    if (source is None) != (target is None):
        raise InvalidInput("a class pair needs both ends: ?from=OLD&to=NEW (an empty value stands for unlabeled)")
    if source is None:
        return kind, None
    if kind not in (None, "relabeled"):
        raise InvalidInput(f"a class pair filters relabeled examples, not {kind} ones: drop kind= from the address")
    return "relabeled", (source or None, target or None)


def diff_view(who: Principal, address: DiffAddress, after: str | None) -> DiffView:
    """The page: both commits and one page of changed examples (what the summary fragment does not need)."""
    from server.datasets.datasets import dataset_read, get_dataset
    from server.datasets.diff import diff_examples
    from server.datasets.history import commit_read, resolve_rev

    require_reader(who, address.dataset)
    store = blob_store()

    def load(db):
        ds = get_dataset(db, address.dataset)
        a, b = commit_read(db, resolve_rev(db, ds, address.a)), commit_read(db, resolve_rev(db, ds, address.b))
        found = diff_examples(
            db, store, dataset=ds.name, rev_a=a.id, rev_b=b.id, after=after, limit=address.limit, kind=address.kind, pair=address.pair
        )
        return dataset_read(ds), a, b, found

    dataset, a, b, found = read(load)
    kind = None if address.pair else address.kind
    return DiffView(
        dataset=dataset,
        address=address,
        commit_a=a,
        commit_b=b,
        tiles=[tile_of(address, dataset.modality, c) for c in found.items],
        next_url=address.url(kind=kind, pair=address.pair, cursor=encode_cursor(found.next_after)) if found.next_after else None,
        first_url=address.url(kind=kind, pair=address.pair) if after is not None else None,
        kind_links=[("all", address.url(), address.kind is None)]
        + [(k, address.url(kind=k), address.kind == k and address.pair is None) for k in KINDS],
    )


@dataclass
class MatrixView:
    """The from-to matrix of relabels as rows of (count, link) cells, or, for many labels, the largest pairs."""

    rows: list[tuple[str, list[tuple[int, str | None]], int]]  # (from label, cells, row total)
    columns: list[str]
    column_totals: list[int]
    pairs: list[tuple[str, str, int, str]] | None = None  # (from, to, count, link) when the grid would be too wide


def matrix_of(address: DiffAddress, labels: list[str], summary: DiffSummary) -> MatrixView:
    """Rows are labels at A, columns labels at B, each in the dataset's order, unlabeled last; only labels with relabels."""
    from server.datasets.diff import label_order

    order = label_order(labels)
    counts = {(c.from_, c.to): c.count for c in summary.relabels}
    sources = sorted({s for s, _ in counts}, key=order)
    targets = sorted({t for _, t in counts}, key=order)
    if len(sources) > MATRIX_MAX or len(targets) > MATRIX_MAX:
        largest = sorted(summary.relabels, key=lambda c: -c.count)[:PAIRS_LISTED]
        pairs = [(shown(c.from_), shown(c.to), c.count, address.url(pair=(c.from_, c.to))) for c in largest]
        return MatrixView(rows=[], columns=[], column_totals=[], pairs=pairs)
    rows = []
    for source in sources:
        cells = [(counts.get((source, t), 0), address.url(pair=(source, t)) if (source, t) in counts else None) for t in targets]
        rows.append((shown(source), cells, sum(n for n, _ in cells)))
    totals = [sum(counts.get((s, t), 0) for s in sources) for t in targets]
    return MatrixView(rows=rows, columns=[shown(t) for t in targets], column_totals=totals)


def summary_fragment(request: Request, who: Principal, address: DiffAddress) -> Response:
    """The counts and the matrix (the whole diff: loaded after the page paints)."""
    from server.datasets.datasets import get_dataset
    from server.datasets.diff import diff_summary

    require_reader(who, address.dataset)
    store = blob_store()
    labels, summary = read(
        lambda db: (
            list(get_dataset(db, address.dataset).labels),
            diff_summary(db, store, dataset=address.dataset, rev_a=address.a, rev_b=address.b),
        )
    )
    counts = [(k, getattr(summary, k), address.url(kind=k)) for k in KINDS]
    matrix = matrix_of(address, labels, summary)
    return page(request, "diff_summary.html", summary=summary, counts=counts, matrix=matrix, address=address)


@router.get("/d/{name}/diff/{spec:path}")
def diff_page(
    request: Request,
    name: str,
    spec: str,
    who: SignedIn,
    kind: str | None = Query(None),
    source: str | None = Query(None, alias="from"),
    target: str | None = Query(None, alias="to"),
    cursor: str | None = Query(None),
    limit: int = Query(PER_PAGE, ge=1, le=PAGE_MAX),
    part: str | None = Query(None),
) -> Response:
    rev_a, rev_b = split_revisions(spec)
    chosen, pair = parse_filters(kind, source, target)
    address = DiffAddress(dataset=name, a=rev_a, b=rev_b, kind=chosen, pair=pair, limit=limit)
    if part == "summary":
        return summary_fragment(request, who, address)
    if part is not None:
        raise NotFound(f"no part '{part}' of a diff page (there is: summary)")
    view = diff_view(who, address, cursor_str(cursor))
    return page(request, "diff.html", title=f"{rev_a}...{rev_b} · {name}", view=view, dataset=view.dataset)

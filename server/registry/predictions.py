"""A model's per-example predictions, read by key range: the flipped examples of two models, a page at a time.

The trainer writes predictions as a Parquet blob (eval_set, key, label, predicted, ...), in any
order. The host's Arrow cache keeps them sorted by (eval_set, key), so both models' rows of one
key range sit side by side and a page of flips costs the rows it scans, not the eval set's size.
"""

import bisect

import pyarrow as pa
import pyarrow.parquet as pq

from server.blobs import BlobStore
from server.datasets.arrow_cache import open_cached

COLUMNS = ["eval_set", "key", "label", "predicted"]
SCAN = 4096  # rows of model A read per step while looking for flips


def _sorted(source: pq.ParquetFile):
    table = source.read(columns=COLUMNS).sort_by([("eval_set", "ascending"), ("key", "ascending")]).combine_chunks()
    yield from table.to_batches(max_chunksize=65_536)


class _Column:
    """A sorted Arrow column as a sequence of Python values, for bisect."""

    def __init__(self, column):  # noqa: ANN001
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.column[i].as_py()


class Predictions:
    """One model's predictions, mapped and sorted by (eval_set, key)."""

    def __init__(self, reader: pa.RecordBatchFileReader):
        self.table = reader.read_all()  # zero-copy views of the mapped file
        sets = _Column(self.table.column("eval_set"))
        self.ranges: dict[str, tuple[int, int]] = {}
        start = 0
        while start < len(sets):
            name = sets[start]
            end = bisect.bisect_right(sets, name, lo=start)
            self.ranges[name] = (start, end)
            start = end
        self.keys = _Column(self.table.column("key"))

    def rows(self, eval_set: str, lo: str | None, hi: str | None, limit: int | None = None) -> list[tuple[str, object, object]]:
        """(key, label, predicted) of eval_set with keys in (lo, hi], in key order, at most limit."""
        start, end = self.ranges.get(eval_set, (0, 0))
        first = bisect.bisect_right(self.keys, lo, lo=start, hi=end) if lo is not None else start
        last = bisect.bisect_right(self.keys, hi, lo=first, hi=end) if hi is not None else end
        if limit is not None:
            last = min(last, first + limit)
        part = self.table.slice(first, last - first)
        return list(zip(*(part.column(c).to_pylist() for c in ("key", "label", "predicted"))))


def open_predictions(blobs: BlobStore, blob_id: str) -> Predictions:
    """A model's predictions, mapped from this host's cache (sorted there on first use)."""
    return open_cached(blobs, blob_id, _sorted, Predictions)


def flips_page(a: Predictions, b: Predictions, eval_set: str, after: str | None, limit: int) -> tuple[list[tuple], str | None]:
    """Examples of eval_set that one model gets right and the other wrong, after `after`, in key order.

    Returns up to limit (key, label_a, predicted_a, label_b, predicted_b) and the cursor of the next
    page (None: no more). Keys only one model was scored on are not flips.
    """
    found: list[tuple] = []
    lo = after
    while True:
        ours = a.rows(eval_set, lo, None, SCAN)
        if not ours:
            return found, None
        hi = ours[-1][0]
        theirs = {key: (label, predicted) for key, label, predicted in b.rows(eval_set, lo, hi)}
        for key, label, predicted in ours:
            other = theirs.get(key)
            if other is not None and (predicted == label) != (other[1] == other[0]):
                found.append((key, label, predicted, *other))
                if len(found) == limit:
                    return found, key
        lo = hi


CELL_SCAN = 65_536  # rows of one eval set filtered per step while looking for a confusion cell's examples


def _equal(column: pa.ChunkedArray, name: str, labels: list[str]) -> pa.ChunkedArray:
    """Where a label column holds the label `name` (predictions store names; older ones label indices)."""
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type):
        return pc.equal(column, labels.index(name))
    return pc.equal(column, name)


def cell_rows(
    p: Predictions, eval_set: str, *, label: str | None, predicted: str | None, labels: list[str], after: str | None, limit: int
) -> list[tuple[str, object, object]]:
    """(key, label, predicted) of eval_set's rows with that label and that prediction (None: any), after `after`.

    A confusion cell's examples, in key order: Arrow filters a bounded slice at a time, so a page
    costs the rows between its first and last match, not a Python loop over the eval set.
    """
    import pyarrow.compute as pc

    start, end = p.ranges.get(eval_set, (0, 0))
    first = bisect.bisect_right(p.keys, after, lo=start, hi=end) if after is not None else start
    found: list[tuple[str, object, object]] = []
    while first < end and len(found) < limit:
        part = p.table.slice(first, min(CELL_SCAN, end - first))
        first += CELL_SCAN
        masks = [_equal(part.column(c), want, labels) for c, want in (("label", label), ("predicted", predicted)) if want is not None]
        if masks:
            part = part.filter(masks[0] if len(masks) == 1 else pc.and_(*masks))  # a null label matches nothing
        found += zip(*(part.column(c).to_pylist() for c in ("key", "label", "predicted")))
    return found[:limit]

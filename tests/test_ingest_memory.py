"""The import's merge of sorted runs holds a bounded number of rows, however many runs there are."""

import tracemalloc

from server.datasets import ingest
from server.datasets.ingest import SortedRows
from server.datasets.rows import Row


def rows(n: int):
    for i in range(n):
        key = f"k{(i * 7919) % n:07d}"  # every key once, out of order
        yield f"row {i}", Row(key, "0" * 64, "a", None, None, None)


def test_the_merge_holds_merge_rows_in_all_not_a_batch_per_run(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "SPILL_ROWS", 4000)
    monkeypatch.setattr(ingest, "MERGE_ROWS", 2000)
    spilled = SortedRows(rows(120_000), workdir=tmp_path)  # 30 runs of 4,000 rows (each one Arrow batch of 4,096)
    try:
        assert len(spilled.runs) == 30
        tracemalloc.start()
        keys = [row.key for row in spilled.stream()]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        spilled.close()
    assert keys == sorted(keys) and len(keys) == 120_000
    # The keys list itself is ~9 MB; a batch per run held at once (120,000 rows of Python objects) was ~70 MB more.
    assert peak < 20 * 2**20, f"the merge held {peak / 2**20:.0f} MiB"

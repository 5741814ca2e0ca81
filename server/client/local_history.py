"""The local backend's reads of history: log, diffs, blame, checkout."""

from pathlib import Path

from server.client.units import _blobs
from server.db import run_read


class LocalHistory:
    """History on the local store (a part of LocalBackend)."""

    # history
    def log(self, name: str, rev: str | None, limit: int | None):
        from server.datasets.history import log_all

        return run_read(lambda db: log_all(db, dataset=name, rev=rev, limit=limit))

    def diff(self, name: str, rev_a: str, rev_b: str) -> dict:
        from server.datasets.diff import diff

        store = _blobs()
        return run_read(lambda db: diff(db, store, dataset=name, rev_a=rev_a, rev_b=rev_b)).as_json()

    def blame(self, name: str, key: str, rev: str | None):
        from server.datasets.history import blame

        return run_read(lambda db: blame(db, dataset=name, key=key, rev=rev))

    def show(self, name: str, key: str, rev: str | None) -> dict:
        from server.datasets.examples import get_example

        store = _blobs()
        ex = run_read(lambda db: get_example(db, store, dataset=name, key=key, rev=rev))
        return {"key": ex.key, "label": ex.label, "split": ex.split, "input": ex.input, "meta": ex.meta}

    def checkout(self, name: str, rev: str, out: Path, force: bool) -> dict:
        """Make `out` a working folder holding rev (only what differs from what it holds is written).

        A move between revisions reads only the keys that the commits separating the two revisions
        changed, and those keys' rows at rev (what the folder holds is in its manifest). Arrow is loaded
        only for a first checkout, or when rev's first-parent history is longer than HISTORY_MAX commits
        (its rows are then read from its checkpoint).
        """
        import sys

        from sqlalchemy import text

        from server.datasets import checkout as working_folder
        from server.datasets.checkout import Revision, checkout
        from server.datasets.datasets import get_dataset
        from server.datasets.graph import checkpoint_chain, separating_commits
        from server.datasets.history import resolve_rev
        from server.datasets.inputs import input_bytes
        from server.datasets.lookup import chain_rows, changed_keys_after

        store = _blobs()

        def first_parents(db, pk: int) -> list[int] | None:
            """The commit's whole first-parent history, oldest first (None if longer than HISTORY_MAX commits)."""
            found = db.execute(
                text(
                    "WITH RECURSIVE fp(pk, parent, depth) AS ("
                    " SELECT pk, first_parent_pk, 0 FROM commits WHERE pk = :pk"
                    " UNION ALL SELECT c.pk, c.first_parent_pk, fp.depth + 1 FROM commits c JOIN fp ON c.pk = fp.parent"
                    " WHERE fp.depth < :most)"
                    " SELECT pk, parent FROM fp ORDER BY depth"
                ),
                {"pk": pk, "most": working_folder.HISTORY_MAX},
            ).all()
            return [pk for pk, _ in reversed(found)] if found[-1][1] is None else None

        def target(db):
            ds = get_dataset(db, name)
            commit = resolve_rev(db, ds, rev)
            return ds, commit, first_parents(db, commit.pk)

        ds, commit, history = run_read(target)

        def rows():
            from server.datasets.arrow import batch_to_rows
            from server.datasets.snapshot import iter_snapshot
            from server.db import read_scope

            with read_scope() as db:
                for batch in iter_snapshot(db, store, commit.pk):
                    yield from batch_to_rows(batch)

        def at_commit(db, keys: list[str]) -> dict:
            """The rows these keys hold at commit (those it does not hold are absent).

            Every delta is taken against the first parent and every delta is kept, so a key holds what the
            newest change to it on the commit's first-parent history says: read through the deltas' (dataset,
            key) index when that history is short, with no checkpoint (nor Arrow) needed. A longer history
            is read as lookup_many does: the deltas since the nearest checkpoint, then the checkpoint.
            """
            if history is not None:
                return {key: row for key, row in chain_rows(db, commit.dataset_id, history, keys).items() if row is not None}
            checkpoint, chain = checkpoint_chain(db, commit.pk)
            changed = chain_rows(db, commit.dataset_id, chain, keys)
            found = {key: row for key, row in changed.items() if row is not None}
            rest = [key for key in keys if key not in changed]
            if rest and checkpoint is not None:
                from server.datasets.checkpoints import open_checkpoint

                found.update(open_checkpoint(store, checkpoint).find(rest))
            return found

        def changes_since(held: str):
            separating: list[set[int]] = []

            def page(db, after):
                if not separating:
                    separating.append(separating_commits(db, resolve_rev(db, ds, held), commit))
                keys, more = changed_keys_after(db, separating[0], after, 5000)
                return keys, at_commit(db, keys), keys[-1] if more else None

            after = None
            while True:  # every key some separating commit touched (some may have changed back): the checkout skips those
                keys, now, after = run_read(lambda db: page(db, after))
                yield from ((key, now.get(key)) for key in keys)
                if after is None:
                    return

        revision = Revision(
            dataset=name,
            commit=commit.id,
            modality=ds.modality,
            labels=list(ds.labels),
            rows=rows,
            changes_since=changes_since,
            read=lambda row: input_bytes(store, row),
        )
        if not sys.stderr.isatty():  # the bar is shown only on a terminal: no need to load tqdm
            return checkout(revision, Path(out), force=force).__dict__
        from server.cli.common import progress

        with progress(f"checking out {commit.id[:12]}", total=None) as bar:
            return checkout(revision, Path(out), force=force, tick=bar.update).__dict__

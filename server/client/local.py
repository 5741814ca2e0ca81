"""The CLI's backend on the local store: each method is one unit of work over the services."""

from pathlib import Path

from server.client.backend import Backend
from server.db import run_in_transaction, run_read


def _author() -> str:
    from server.cli.common import author

    return author()


def _audited(action: str, target, work, detail=None):
    """Run a write in one transaction with its audit event (actor: S2_AUTHOR), as the API records its writes."""
    from server.auth.service import record

    def unit(db):
        result = work(db)
        record(db, _author(), action, target(result) if callable(target) else target, detail(result) if detail else None)
        return result

    return run_in_transaction(unit)


def _blobs():
    from server.blobs import default_blob_store

    return default_blob_store()


FOLLOW_POLL_S = 0.05  # how often a run about to end (or still queued) is read


def _restart(bar, phase: str) -> None:  # noqa: ANN001  (a tqdm bar)
    """Show a new phase of a long job on the same progress bar."""
    bar.reset()
    bar.set_description(phase)


class LocalBackend(Backend):
    """Direct access to the configured database and blob store."""

    remote = False

    # datasets and refs
    def create_dataset(self, name: str, modality: str, labels: list[str]):
        from server.datasets.datasets import create_dataset

        return _audited(
            "dataset.create", name, lambda db: create_dataset(db, name=name, modality=modality, labels=labels, author=_author())
        )

    def list_datasets(self):
        from server.datasets.datasets import list_datasets

        return run_read(list_datasets)

    def list_branches(self, name: str):
        from server.datasets.refs import list_branches

        return run_read(lambda db: list_branches(db, dataset=name))

    def create_branch(self, name: str, new: str, from_rev: str | None):
        from server.datasets.refs import create_branch

        return _audited("branch.create", f"{name}/{new}", lambda db: create_branch(db, dataset=name, name=new, from_rev=from_rev))

    def set_protected(self, name: str, branch: str, protected: bool):
        from server.datasets.refs import set_protected

        return _audited(
            "branch.protect" if protected else "branch.unprotect",
            f"{name}/{branch}",
            lambda db: set_protected(db, dataset=name, branch=branch, protected=protected),
        )

    def create_tag(self, name: str, tag: str, rev: str) -> str:
        from server.datasets.refs import create_tag

        return _audited("tag.create", f"{name}/{tag}", lambda db: create_tag(db, dataset=name, name=tag, rev=rev))

    def list_tags(self, name: str) -> list[tuple[str, str]]:
        from server.datasets.refs import list_tags

        return run_read(lambda db: list_tags(db, dataset=name))

    def delete_branch(self, name: str, branch: str) -> dict:
        from server.datasets.refs import delete_branch

        return _audited(
            "branch.delete",
            f"{name}/{branch}",
            lambda db: delete_branch(db, dataset=name, branch=branch),
            detail=lambda r: {"head": r["head"], "dropped_staged": r["dropped_staged"]},
        )

    def delete_tag(self, name: str, tag: str) -> dict:
        from server.datasets.refs import delete_tag

        return _audited(
            "tag.delete", f"{name}/{tag}", lambda db: delete_tag(db, dataset=name, tag=tag), detail=lambda r: {"commit": r["commit"]}
        )

    def delete_dataset(self, name: str) -> dict:
        from server.datasets.datasets import delete_dataset

        return _audited(
            "dataset.delete", name, lambda db: delete_dataset(db, name=name), detail=lambda r: {k: v for k, v in r.items() if k != "name"}
        )

    def workers_listening(self, queue: str) -> dict:
        from server.runs.service import workers_listening

        return run_read(lambda db: workers_listening(db, queue))

    # edits and commits
    def stage(self, name: str, branch: str | None, edits: list[tuple[str, str | None, bool]]):
        from server.datasets.staging import stage_edits

        store, who = _blobs(), _author()
        return _audited(
            "edits.stage",
            f"{name}/{branch or 'default'}",
            lambda db: stage_edits(db, store, dataset=name, branch=branch, edits=edits, author=who),
            detail=lambda staged: {"keys": [s.key for s in staged][:100], "count": len(staged)},
        )

    def list_staged(self, name: str, branch: str | None):
        from server.datasets.staging import list_staged

        return run_read(lambda db: list_staged(db, dataset=name, branch=branch))

    def unstage(self, name: str, branch: str | None, keys: list[str] | None) -> tuple[int, int]:
        """(dropped, kept); on the local store the CLI user may drop anyone's edit, as an engineer may."""
        from server.datasets.staging import unstage

        return _audited("edits.unstage", f"{name}/{branch or 'default'}", lambda db: unstage(db, dataset=name, branch=branch, keys=keys))

    def commit(self, name: str, branch: str | None, message: str):
        """The commit outcome: the new commit (None when every staged edit matched the head) and the edits dropped."""
        from server.datasets.compaction import compact_after
        from server.datasets.staging import commit_staged

        store, who = _blobs(), _author()
        outcome = _audited(
            "edits.commit",
            f"{name}/{branch or 'default'}",
            lambda db: commit_staged(db, store, dataset=name, branch=branch, message=message, author=who),
            detail=lambda o: {"commit": o.commit.id if o.commit else None, "dropped": o.dropped},
        )
        if outcome.commit is not None:
            compact_after(store, outcome.commit.id)
        return outcome

    def merge(
        self, name: str, source: str, into: str, message: str | None, *, strategy: str | None = None, resolutions: dict | None = None
    ) -> tuple[str, str, int]:
        """(outcome, new head id, changes); a conflict is recorded as the merge in progress into `into`, then raised."""
        from server.datasets import pending
        from server.datasets.compaction import compact_after
        from server.errors import Conflict

        store, who = _blobs(), _author()
        try:
            how, head = _audited(
                "branch.merge",
                f"{name}/{into}",
                lambda db: pending.merge_tracked(
                    db,
                    store,
                    dataset=name,
                    source=source,
                    into=into,
                    author=who,
                    message=message,
                    strategy=strategy,
                    resolutions=resolutions,
                ),
                detail=lambda r: {"outcome": r[0], "head": r[1].id, "source": source},
            )
        except Conflict as exc:
            if "conflicts" in (conflict := exc).extra:
                _audited(
                    "merge.pending",
                    f"{name}/{into}",
                    lambda db: pending.record_conflicted(
                        db, dataset=name, exc=conflict, author=who, message=message, resolutions=resolutions
                    ),
                    detail=lambda r: {"source": source, "conflicts": len(conflict.extra["conflicts"])},
                )
            raise
        if how == "merge":
            compact_after(store, head.id)
        return how, head.id, head.changes if how == "merge" else 0

    def pending_merge(self, name: str, into: str | None) -> dict:
        from server.datasets import pending

        store = _blobs()
        return run_read(lambda db: pending.pending_json(db, store, dataset=name, into=into))

    def resolve_merge(self, name: str, into: str | None, key: str, resolution: dict, source: str | None) -> dict:
        from server.datasets import pending
        from server.datasets.compaction import compact_after

        store, who = _blobs(), _author()
        done = _audited(
            "merge.resolve",
            lambda r: f"{name}/{r['into']}",
            lambda db: pending.resolve(db, store, dataset=name, into=into, key=key, resolution=resolution, author=who, source=source),
            detail=lambda r: {"key": key, **resolution, "state": r["state"], "head": r.get("head")},
        )
        if done["state"] == "merged" and done["outcome"] == "merge":
            compact_after(store, done["head"])
        return done

    def abort_merge(self, name: str, into: str | None) -> str:
        from server.datasets import pending

        return _audited("merge.abort", lambda target: f"{name}/{target}", lambda db: pending.abort(db, dataset=name, into=into))

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

    # moving data in and out
    def import_(self, name: str, source: Path, branch: str | None, message: str | None) -> dict:
        """Import source as one commit, as a job with a progress bar: {"commit", "examples", "changes", "rows"}."""
        from server.cli.common import progress
        from server.errors import InvalidInput
        from server.imports.runner import run_import
        from server.imports.service import create_job

        store, who, source = _blobs(), _author(), Path(source)
        job = _audited(
            "dataset.import",
            f"{name}/{branch or 'default'}",
            lambda db: create_job(
                db, dataset=name, branch=branch, source=str(source), message=message or f"import {source.name}", author=who
            ),
            detail=lambda j: {"job": j.id, "source": source.name},
        )
        with progress(f"reading {source.name}") as bar:
            done = run_import(job.id, source, store, tick=bar.update, on_phase=lambda phase: _restart(bar, phase))
        if done.state != "succeeded":
            raise InvalidInput(done.error or f"import job {done.id} {done.state}")
        return {"commit": done.commit, "examples": done.examples, "changes": done.changes, "rows": done.rows}

    def list_imports(self, name: str, limit: int) -> list[dict]:
        from server.imports.service import list_jobs

        return [j.model_dump(mode="json") for j in run_in_transaction(lambda db: list_jobs(db, dataset=name, limit=limit))]

    def export(self, name: str, rev: str, out: Path, fmt: str) -> tuple[int, str]:
        """Write rev to out; returns (examples, commit id)."""
        from server.cli.common import progress
        from server.datasets.datasets import get_dataset
        from server.datasets.exporting import check_target, export_rows, iter_rows
        from server.datasets.history import resolve_rev
        from server.datasets.snapshot import iter_snapshot

        store = _blobs()
        check_target(out)

        def write(db):
            ds = get_dataset(db, name)
            commit = resolve_rev(db, ds, rev)
            with progress(f"exporting {commit.id[:12]}", total=commit.row_count) as bar:
                return export_rows(
                    iter_rows(iter_snapshot(db, store, commit.pk)),
                    out=out,
                    fmt=fmt,
                    modality=ds.modality,
                    labels=list(ds.labels),
                    blobs=store,
                    tick=bar.update,
                ), commit.id

        return run_read(write)

    def fsck(self) -> dict:
        from server.cli.common import progress
        from server.maintenance.fsck import check_store

        store = _blobs()
        with progress("checking blobs", unit="blob") as bar:
            return run_read(lambda db: check_store(db, store, tick=bar.update)).model_dump(mode="json")

    def gc(self, grace_s: float | None, dry_run: bool) -> dict:
        from server.cli.common import progress
        from server.config import get_settings
        from server.maintenance.gc import collect_garbage

        store, grace = _blobs(), get_settings().gc_grace_s if grace_s is None else grace_s
        with progress("reclaiming blobs", unit="blob") as bar:
            report = collect_garbage(store, grace_s=grace, dry_run=dry_run, tick=bar.update)
        _audited(
            "store.gc",
            "blobs",
            lambda db: None,
            detail=lambda _: {"blobs": report.blobs, "freed_bytes": report.freed_bytes, "dry_run": report.dry_run},
        )
        return report.model_dump(mode="json")

    # training
    def watch(self, name: str, branch: str, spec: dict | None, folds: int | None = None) -> dict:
        from server.runs.service import watch

        return _audited("watch.set", f"{name}/{branch}", lambda db: watch(db, dataset=name, branch=branch, spec=spec, folds=folds))

    def unwatch(self, name: str, branch: str) -> None:
        from server.runs.service import unwatch

        _audited("watch.unset", f"{name}/{branch}", lambda db: unwatch(db, dataset=name, branch=branch))

    def pin_eval(self, name: str, eval_name: str, rev: str, source: str | None, only_eval_split: bool) -> dict:
        from server.registry.service import pin_eval

        return _audited(
            "eval.pin",
            f"{name}/{eval_name}",
            lambda db: pin_eval(db, dataset=name, name=eval_name, source=source, rev=rev, only_eval_split=only_eval_split),
        )

    def submit_run(
        self, name: str, rev: str | None, spec: dict | None, *, from_model: str | None = None, force: bool = False, folds: int | None = None
    ):
        from server.runs.service import submit_run

        store, who = _blobs(), _author()
        return _audited(
            "run.submit",
            name,
            lambda db: submit_run(
                db, store, dataset=name, rev=rev, spec=spec, requested_by=who, from_model=from_model, force=force, folds=folds
            ),
            detail=lambda r: {"run": r.id, "commit": r.dataset_commit, **({"reused": r.model} if r.reused else {})},
        )

    def get_run(self, run_id: int):
        from server.runs.service import get_run
        from server.runs.service import run_read as run_view

        return run_read(lambda db: run_view(db, get_run(db, run_id)))

    def follow_run(self, run_id: int):
        """Yield the run each time it changes, until it ends.

        A running run is read every 50 ms while it sets up or is due to end within a second (by
        its ETA), so its end is seen at once; while it has longer to go, a third of the ETA (at
        most 1 s) passes between reads, which leaves the CPU to the training on a shared host. A
        queued run is read every 50 ms, backing off to 0.2 s.
        """
        import time

        poll_s = FOLLOW_POLL_S
        last, delay = None, poll_s
        while True:
            run = self.get_run(run_id)
            changed = run != last
            if changed:
                yield run
                last = run
            if run.state in ("succeeded", "failed", "cancelled"):
                return
            eta = (run.progress or {}).get("eta_s")
            if run.state == "running":
                delay = poll_s if eta is None or eta < 1.0 else min(eta / 3, 1.0)
            else:
                delay = poll_s if changed else min(delay * 1.2, 0.2)
            time.sleep(delay)

    def list_runs(self, name: str | None, limit: int):
        from server.runs.service import list_runs

        return run_read(lambda db: list_runs(db, dataset=name, limit=limit))

    def cancel_run(self, run_id: int):
        from server.runs.service import cancel_run

        return _audited("run.cancel", str(run_id), lambda db: cancel_run(db, run_id))

    def get_model(self, ref: str):
        from server.registry.service import get_model, model_read

        return run_read(lambda db: model_read(db, get_model(db, ref)))

    def list_models(self, name: str):
        from server.registry.service import list_models

        return run_read(lambda db: list_models(db, dataset=name))

    def compare(self, ref_a: str, ref_b: str) -> dict:
        from server.registry.compare import compare_all

        store = _blobs()
        return run_read(lambda db: compare_all(db, store, ref_a=ref_a, ref_b=ref_b))

    def promote(self, ref: str, stage: str, force: bool, max_regression: float | None) -> dict:
        from server.config import get_settings
        from server.registry.compare import promote

        limit = get_settings().promote_max_regression if max_regression is None else max_regression
        who = _author()
        return _audited(
            "model.promote",
            lambda r: r["model"],
            lambda db: promote(db, ref=ref, stage=stage, max_regression=limit, force=force, by=who),
            detail=lambda r: {"stage": stage, "replaced": r["replaced"], "forced": force},
        )

    # users (the local store is administered directly; the audit trail names the CLI user)
    def list_audit(self, actor: str | None, limit: int):
        from server.auth.service import list_audit

        return run_read(lambda db: list_audit(db, limit=limit, actor=actor))

    def _admin_write(self, action: str, target: str, work, detail: dict | None = None):
        return _audited(action, target, work, (lambda _: detail) if detail else None)

    def add_user(self, name: str, role: str, datasets: list[str]):
        from server.auth.service import assign, create_user, issue_token

        def work(db):
            create_user(db, name=name, role=role)
            for ds in datasets:
                assign(db, user=name, dataset=ds)
            return issue_token(db, user=name, label="first token")

        return self._admin_write("user.create", name, work, {"role": role, "datasets": datasets})

    def issue_token(self, name: str, label: str | None):
        from server.auth.service import issue_token

        return self._admin_write("token.issue", name, lambda db: issue_token(db, user=name, label=label))

    def revoke_token(self, token_id: int):
        from server.auth.schemas import Principal
        from server.auth.service import revoke_token

        return self._admin_write(
            "token.revoke", str(token_id), lambda db: revoke_token(db, token_id=token_id, by=Principal(name=_author(), role="admin"))
        )

    def list_users(self):
        from server.auth.service import list_users

        return run_read(lambda db: list_users(db, limit=1_000_000))

    def list_tokens(self, name: str):
        from server.auth.service import list_tokens

        return run_read(lambda db: list_tokens(db, user=name))

    def assign(self, name: str, dataset: str, remove: bool):
        from server.auth.service import assign

        return self._admin_write(
            "member.remove" if remove else "member.add",
            f"{dataset}/{name}",
            lambda db: assign(db, user=name, dataset=dataset, assigned=not remove),
        )

    def review_add(self, name: str, queue: str, items: list[tuple[str, float, str | None]], suggestions: dict[str, str] | None = None):
        from labeling.review import add_items

        blobs = _blobs()
        return _audited(
            "review.add",
            f"{name}/{queue}",
            lambda db: add_items(db, blobs, dataset=name, queue=queue, items=items, by=_author(), suggestions=suggestions),
            lambda r: {"added": r[0], "updated": r[1]},
        )

    def review_list(self, name: str, queue: str, limit: int):
        from labeling.review import list_items

        found = run_read(lambda db: list_items(db, dataset=name, queue=queue, after=None, limit=limit))
        return [
            {
                "key": r.key,
                "score": r.score,
                "reason": r.reason,
                "added_by": r.added_by,
                "model_id": r.model_id,
                "suggested": r.suggested,
                "confidence": r.confidence,
                "given": r.given,
            }
            for r in found
        ]

    # the data engine
    def accept_suggestions(self, name: str, queue: str, keys: list[str], branch: str | None) -> list[dict]:
        from server.engine.service import accept_suggestions

        blobs = _blobs()
        return _audited(
            "engine.accept",
            f"{name}/{queue}",
            lambda db: accept_suggestions(db, blobs, dataset=name, queue=queue, keys=keys, branch=branch, author=_author()),
            lambda r: {"keys": [a["key"] for a in r][:100]},
        )

    def keep_labels(self, name: str, queue: str, keys: list[str]) -> int:
        from server.engine.service import keep_labels

        return _audited(
            "engine.keep",
            f"{name}/{queue}",
            lambda db: keep_labels(db, dataset=name, queue=queue, keys=keys, by=_author()),
            lambda r: {"kept": r},
        )

    def queue_neighbours(self, name: str, queue: str, key: str, k: int) -> list[dict]:
        from server.engine.service import neighbours

        blobs = _blobs()
        return run_read(lambda db: neighbours(db, blobs, dataset=name, queue=queue, key=key, k=k))

    def example_lineage(self, name: str, key: str) -> list[dict]:
        from server.engine.lineage import example_lineage

        blobs = _blobs()
        return run_read(lambda db: example_lineage(db, blobs, dataset=name, key=key))

    def model_lineage(self, ref: str) -> dict:
        from server.engine.lineage import model_lineage

        blobs = _blobs()
        return run_read(lambda db: model_lineage(db, blobs, ref=ref))

    def set_consensus(self, name: str, queue: str, votes: int, branch: str | None) -> dict:
        from server.engine.consensus import require_votes

        return _audited(
            "consensus.set",
            f"{name}/{queue}",
            lambda db: require_votes(db, dataset=name, queue=queue, required=votes, branch=branch, by=_author()),
        )

    def vote(self, name: str, queue: str, key: str, label: str) -> dict:
        from server.engine.consensus import cast_vote

        blobs = _blobs()
        return _audited(
            "consensus.vote",
            f"{name}/{queue}",
            lambda db: cast_vote(db, blobs, dataset=name, queue=queue, key=key, label=label, labeler=_author()),
        )

    def resolve_dispute(self, name: str, key: str, label: str, branch: str | None) -> dict:
        from server.engine.consensus import resolve_dispute

        blobs = _blobs()
        return _audited(
            "consensus.resolve",
            name,
            lambda db: resolve_dispute(db, blobs, dataset=name, key=key, label=label, by=_author(), branch=branch),
        )

    def agreement(self, name: str, queue: str) -> dict:
        from server.engine.consensus import queue_agreement

        return run_read(lambda db: queue_agreement(db, dataset=name, queue=queue))

    def add_slice(self, name: str, slice_name: str, keys: list[str] | None, query: str | None, rev: str | None, minimum: float) -> dict:
        from server.engine.slices import add_slice

        blobs = _blobs()
        return _audited(
            "slice.add",
            f"{name}/{slice_name}",
            lambda db: add_slice(db, blobs, dataset=name, name=slice_name, keys=keys, query=query, rev=rev, minimum=minimum, by=_author()),
        )

    def list_slices(self, name: str) -> list[dict]:
        from server.engine.slices import list_slices

        return run_read(lambda db: list_slices(db, dataset=name))

    def remove_slice(self, name: str, slice_name: str) -> None:
        from server.engine.slices import remove_slice

        _audited("slice.remove", f"{name}/{slice_name}", lambda db: remove_slice(db, dataset=name, name=slice_name))

    def model_analysis(self, ref: str) -> dict | None:
        from server.engine.service import analysis_of
        from server.registry.service import get_model

        found = run_read(lambda db: analysis_of(db, get_model(db, ref)))
        return None if found is None else found.__dict__

    def review_remove(self, name: str, queue: str, keys: list[str] | None):
        from labeling.review import remove_items

        return _audited(
            "review.remove", f"{name}/{queue}", lambda db: remove_items(db, dataset=name, queue=queue, keys=keys), lambda r: {"removed": r}
        )

    # merge requests: the routes' service calls; the CLI user holds an engineer's rights on the local store, so
    # approves and merges, and resolves or closes any request (a server allows the last two to its author or an engineer)
    def mr_open(self, name: str, source: str, target: str | None, title: str, description: str) -> dict:
        from server.merge_requests.service import open_request

        store, who = _blobs(), _author()
        return _audited(
            "merge_request.open",
            name,
            lambda db: open_request(
                db, store, dataset=name, source=source, target=target, title=title, description=description, author=who
            ),
            detail=lambda r: {"number": r.number, "source": r.source, "target": r.target},
        ).model_dump(mode="json")

    def mr_list(self, name: str, state: str | None) -> list[dict]:
        """Every request of NAME (in state, when given), newest first, read 1000 at a time."""
        from server.merge_requests.service import list_requests

        found, before = [], None
        while True:
            page = run_read(lambda db: list_requests(db, dataset=name, state=state, before=before, limit=1000))
            found += [r.model_dump(mode="json") for r in page]
            if len(page) < 1000:
                return found
            before = page[-1].number

    def mr_get(self, name: str, number: int) -> dict:
        from server.merge_requests.service import request_detail

        store = _blobs()
        return run_read(lambda db: request_detail(db, store, dataset=name, number=number)).model_dump(mode="json")

    def mr_comment(self, name: str, number: int, body: str) -> dict:
        from server.merge_requests.service import add_comment

        who = _author()
        return _audited(
            "merge_request.comment", f"{name}!{number}", lambda db: add_comment(db, dataset=name, number=number, author=who, body=body)
        ).model_dump(mode="json")

    def mr_approve(self, name: str, number: int) -> dict:
        from server.merge_requests.service import approve

        who = _author()
        return _audited(
            "merge_request.approve", f"{name}!{number}", lambda db: approve(db, dataset=name, number=number, by=who)
        ).model_dump(mode="json")

    def mr_resolve(self, name: str, number: int, key: str, take: str) -> dict:
        from server.merge_requests.service import resolve

        store, who = _blobs(), _author()
        return _audited(
            "merge_request.resolve",
            f"{name}!{number}",
            lambda db: resolve(db, store, dataset=name, number=number, key=key, take=take, by=who),
            detail=lambda r: {"key": r.key, "take": r.take},
        ).model_dump(mode="json")

    def mr_merge(self, name: str, number: int) -> dict:
        from server.datasets.compaction import compact_after
        from server.merge_requests.service import merge_request

        store, who = _blobs(), _author()
        done = _audited(
            "merge_request.merge",
            f"{name}!{number}",
            lambda db: merge_request(db, store, dataset=name, number=number, by=who),
            detail=lambda r: {"head": r.merge_commit},
        )
        compact_after(store, done.merge_commit)
        return done.model_dump(mode="json")

    def mr_close(self, name: str, number: int) -> dict:
        from server.merge_requests.service import close_request

        done = _audited("merge_request.close", f"{name}!{number}", lambda db: close_request(db, dataset=name, number=number))
        return done.model_dump(mode="json")

    def set_password(self, name: str, password: str | None):
        from server.auth.service import user_read
        from server.auth.signin import set_password

        def work(db):
            set_password(db, name=name, password=password)
            return user_read(db, name)

        return self._admin_write("user.password", name, work, {"removed": password is None})

    def set_user(self, name: str, role: str | None, disabled: bool | None):
        from server.auth.service import set_role

        return self._admin_write(
            "user.update", name, lambda db: set_role(db, name=name, role=role, disabled=disabled), {"role": role, "disabled": disabled}
        )

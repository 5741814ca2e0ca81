"""The CLI's backend on the local store: each method is one unit of work over the services."""

from pathlib import Path

from server.client.backend import Backend
from server.client.local_engine import LocalEngine
from server.client.local_history import LocalHistory
from server.client.local_labelstudio import LocalLabelStudio
from server.client.local_people import LocalPeople
from server.client.units import _audited, _author, _blobs
from server.db import run_in_transaction, run_read

FOLLOW_POLL_S = 0.05  # how often a run about to end (or still queued) is read


def _restart(bar, phase: str) -> None:  # noqa: ANN001  (a tqdm bar)
    """Show a new phase of a long job on the same progress bar."""
    bar.reset()
    bar.set_description(phase)


class LocalBackend(LocalHistory, LocalPeople, LocalEngine, LocalLabelStudio, Backend):
    """Direct access to the configured database and blob store (history, people, the data engine and Label Studio in their own modules)."""

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

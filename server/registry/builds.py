"""Models as the builds of commits: for a page of commits, the model each produced and the run that is building it.

In Software 2.0 a commit of data is a change to the program and its model is the build. The
history page shows, next to each commit, its newest model version (and how its headline metric
moved against the model of the commit before it), or else the state of the latest run of it
(queued, running, failed) or of the run that covers it (a watch rule coalesces a burst of commits
into one run of the newest).
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.registry.service import model_read
from server.runs.models import ModelVersion, TrainingRun
from server.runs.schemas import ModelRead

HEADLINE = ("accuracy", "macro_f1")


@dataclass
class Build:
    """What training made of one commit."""

    model: ModelRead | None  # its newest model version
    models: int  # how many model versions it has
    run_id: int | None  # the latest run of it (or covering it)
    run_state: str | None
    covered_by: str | None = None  # the commit whose run stands for this one
    previous: ModelRead | None = None  # the model of the nearest older commit with one (for the deltas)

    def delta(self, metric: str) -> float | None:
        if self.model is None or self.previous is None:
            return None
        a, b = self.previous.metrics.get(metric), self.model.metrics.get(metric)
        return None if a is None or b is None else b - a


def builds_of(db: Session, dataset_id: int, dataset: str, commit_ids: list[str]) -> dict[str, Build]:
    """The build of each commit (ordered newest first, as history pages are); each model's previous is the next older one's."""
    if not commit_ids:
        return {}
    newest: dict[str, ModelVersion] = {}
    counts: dict[str, int] = {}
    for m in db.scalars(
        select(ModelVersion)
        .where(ModelVersion.dataset_id == dataset_id, ModelVersion.commit_id.in_(commit_ids))
        .order_by(ModelVersion.version)
    ):
        newest[m.commit_id] = m
        counts[m.commit_id] = counts.get(m.commit_id, 0) + 1
    runs: dict[str, TrainingRun] = {}
    covering: dict[str, TrainingRun] = {}
    wanted = set(commit_ids)
    # Runs are few per dataset next to commits; the newest 2,000 are plenty for a page of history.
    for run in db.scalars(select(TrainingRun).where(TrainingRun.dataset_id == dataset_id).order_by(TrainingRun.id.desc()).limit(2000)):
        if run.commit_id in wanted and run.commit_id not in runs:
            runs[run.commit_id] = run
        for covered in run.covers or []:
            if covered in wanted and covered != run.commit_id and covered not in covering:
                covering[covered] = run
    builds: dict[str, Build] = {}
    for cid in commit_ids:
        m = newest.get(cid)
        run = runs.get(cid) or covering.get(cid)
        builds[cid] = Build(
            model=model_read(db, m, dataset) if m is not None else None,
            models=counts.get(cid, 0),
            run_id=run.id if run is not None else None,
            run_state=run.state if run is not None else None,
            covered_by=run.commit_id if run is not None and cid not in runs else None,
        )
    older: ModelRead | None = None
    for cid in reversed(commit_ids):  # oldest first: each model's previous is the last one seen
        build = builds[cid]
        if build.model is not None:
            build.previous = older
            older = build.model
    return builds

"""Who may see which runs: one rule for the REST API and the pages.

Engineers and admins see every run; a labeler only the runs of the datasets assigned to them, and
to a labeler a run that does not exist and a run of another dataset look the same (ids reveal nothing).
"""

from sqlalchemy.orm import Session

from server.auth.policy import require_reader
from server.auth.schemas import Principal
from server.errors import Forbidden, NotFound
from server.runs import service
from server.runs.schemas import RunRead


def check_run_listing(who: Principal, dataset: str | None) -> None:
    """Forbidden unless who may list the runs of `dataset` (None: of every dataset, which a labeler may not)."""
    if dataset is not None:
        require_reader(who, dataset)
    elif who.role == "labeler":
        raise Forbidden(f"labeler '{who.name}' may list the runs of an assigned dataset only: add ?dataset=NAME")


def readable_run(db: Session, who: Principal, run_id: int) -> RunRead:
    """The run, if who may read it; NotFound for engineers, Forbidden for a labeler either way."""
    hidden = Forbidden(f"labeler '{who.name}' may read the runs of their assigned datasets only; run {run_id} is not one of them")
    try:
        run = service.run_read(db, service.get_run(db, run_id))
    except NotFound:
        if who.role == "labeler":
            raise hidden from None
        raise
    if who.role == "labeler" and run.dataset not in who.datasets:
        raise hidden
    return run

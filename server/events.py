"""Domain events inside one transaction: a domain announces what it did; others react in the same transaction.

The versioning engine must not know that a watched branch is trained (that would make it import
the training domain, which imports the engine): it publishes HeadMoved, and the runs domain,
subscribed at start-up (server/wiring.py), queues the training in the same transaction, so a
commit and the run it starts land together or not at all.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class HeadMoved:
    """A branch now points at a new commit (a commit, a merge, a fast-forward, an import)."""

    dataset_id: int
    branch: str
    commit_id: str


_handlers: dict[type, list[Callable[[Session, object], None]]] = {}


def subscribe(event_type: type, handler: Callable[[Session, object], None]) -> None:
    """Call handler(db, event) for every event of this type published from now on (once per handler)."""
    handlers = _handlers.setdefault(event_type, [])
    if handler not in handlers:
        handlers.append(handler)


def publish(db: Session, event: object) -> None:
    """Let every subscriber react to event inside the caller's transaction."""
    for handler in _handlers.get(type(event), []):
        handler(db, event)

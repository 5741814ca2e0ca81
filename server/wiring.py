"""Which domain reacts to which event: installed once per process, before any session is used."""

_installed: list[bool] = []


def _train_watched_head(db, event) -> None:  # noqa: ANN001  (a Session, a server.events.HeadMoved)
    # The runs domain is loaded by the first head that moves, not by every process that opens the
    # store: a read (s2 checkout, s2 log) never needs it, and its import is ~15 ms of start-up.
    from server.runs.service import on_head_moved

    on_head_moved(db, event)


def install() -> None:
    """Subscribe every domain's reactions (idempotent)."""
    if _installed:
        return
    from server.events import HeadMoved, subscribe

    subscribe(HeadMoved, _train_watched_head)
    _installed.append(True)

"""Which domain reacts to which event: installed once per process, before any session is used."""

_installed: list[bool] = []


def install() -> None:
    """Subscribe every domain's reactions (idempotent)."""
    if _installed:
        return
    from server.events import HeadMoved, subscribe
    from server.runs.service import on_head_moved

    subscribe(HeadMoved, on_head_moved)
    _installed.append(True)

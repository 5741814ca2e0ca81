"""This worker process's name, as recorded on the runs it claims and in its heartbeats."""

import os
import socket

_name: list[str] = []


def name() -> str:
    """host:pid, fixed for the life of the process."""
    if not _name:
        _name.append(f"{socket.gethostname()}:{os.getpid()}")
    return _name[0]

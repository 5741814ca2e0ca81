"""The CLI's two backends serve one protocol: every operation exists in both, with the same parameters."""

import inspect

from server.client.backend import Backend
from server.client.local import LocalBackend
from server.client.remote import RemoteBackend


def operations(cls) -> dict[str, list[str]]:
    """The public methods a class defines, itself or in the parts it mixes in (not the protocol's empty ones), with their parameters."""
    own = [c for c in cls.__mro__ if c is cls or c not in Backend.__mro__]
    return {
        name: list(inspect.signature(fn).parameters)[1:]
        for part in reversed(own)
        for name, fn in vars(part).items()
        if inspect.isfunction(fn) and not name.startswith("_")
    }


def test_both_backends_implement_the_protocol_exactly():
    protocol = operations(Backend)
    assert len(protocol) >= 40
    for backend in (LocalBackend, RemoteBackend):
        assert Backend in backend.__mro__
        assert operations(backend) == protocol, backend.__name__

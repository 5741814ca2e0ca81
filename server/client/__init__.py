"""What the CLI talks to: the store directly (local) or an s2 server over HTTP (remote), same methods."""

_overrides: dict[str, str | None] = {}
_backend: list = []


def configure(server: str | None, token: str | None) -> None:
    """Use this server and token (from the command line) instead of S2_SERVER / S2_TOKEN."""
    _overrides.update({k: v for k, v in {"server": server, "token": token}.items() if v})
    _backend.clear()


def backend():
    """The remote backend when a server is configured (--server or S2_SERVER), else the local store."""
    if not _backend:
        from server.config import get_settings

        settings = get_settings()
        url = _overrides.get("server") or settings.server
        if url:
            from server.client.remote import RemoteBackend

            token = _overrides.get("token") or (settings.token.get_secret_value() if settings.token else None)
            _backend.append(RemoteBackend(url, token))
        else:
            from server.client.local import LocalBackend

            _backend.append(LocalBackend())
    return _backend[0]

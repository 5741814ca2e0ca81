"""The `label_studio` fixture: one real Label Studio server for the whole test session (see server.py)."""

import pytest

from tests.labelstudio.server import LabelStudioError, LabelStudioMissing, LabelStudioServer


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    """A started LabelStudioServer: .url, .token (the admin's legacy API token), .annotators(n), .stop(), .start().

    Fails the run in one line when bench/.venv-ls has no Label Studio (no skip: the bridge's tests need it)."""
    try:
        server = LabelStudioServer(tmp_path_factory.mktemp("label-studio"))
    except LabelStudioMissing as exc:
        pytest.exit(str(exc), returncode=3)
    except LabelStudioError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except LabelStudioError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


# The bridge's tests run a real `s2 serve` (Label Studio loads media from it and calls its webhook) on PostgreSQL
from tests.api.conftest import api_factory, db_url  # noqa: E402,F401

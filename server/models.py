"""Import every ORM module so Base.metadata knows all tables (for Alembic and tests)."""

from labeling import models as labeling_models  # noqa: F401,E402
from labeling.labelstudio import models as labelstudio_models  # noqa: F401,E402
from server.auth import models as auth_models  # noqa: F401,E402
from server.datasets import models as datasets_models  # noqa: F401
from server.datasets import pending as pending_merge_models  # noqa: F401
from server.engine import models as engine_models  # noqa: F401
from server.imports import models as imports_models  # noqa: F401
from server.merge_requests import models as merge_request_models  # noqa: F401
from server.runs import models as runs_models  # noqa: F401

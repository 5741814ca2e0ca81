"""The Celery app of s2 workers: configuration comes from server settings, tasks from workers.tasks."""

from celery import Celery

from server.config import get_settings
from server.runs.broker import celery_config


def make_app() -> Celery:
    """A Celery app configured from S2_* settings, with the training tasks registered."""
    app = Celery("s2", include=["workers.tasks"])
    app.conf.update(celery_config(get_settings()))
    return app


celery_app = make_app()

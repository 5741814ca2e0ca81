"""Celery configuration shared by the senders (API, CLI) and the workers; queues as an Enum."""

from enum import StrEnum
from functools import lru_cache

from server.config import Settings, get_settings

TRAIN_TASK = "s2.train_run"


class Queue(StrEnum):
    """Where a run is sent: GPU hosts listen on `gpu`, everything else on `cpu`."""

    CPU = "cpu"
    GPU = "gpu"


def celery_config(settings: Settings) -> dict:
    """Broker and task policy: late acks, one task at a time per worker, no result backend."""
    config = {
        "broker_url": settings.resolved_broker_url,
        "task_acks_late": True,  # a task whose worker dies is not lost with it
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # a training run is long: never hoard messages
        "task_ignore_result": True,  # state lives in the database, not in a result backend
        "task_default_queue": Queue.CPU.value,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    if config["broker_url"].startswith("filesystem"):
        folder = settings.broker_folder
        folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),  # default is ./control in the working directory
            "polling_interval": settings.broker_poll_s,
        }
    return config


@lru_cache(maxsize=1)
def sender():
    """A Celery app used only to send tasks by name (importing workers/ is not needed)."""
    from celery import Celery

    app = Celery("s2")
    app.conf.update(celery_config(get_settings()))
    return app

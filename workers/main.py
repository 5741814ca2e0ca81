"""`s2 worker`: a Celery worker (solo pool) plus a thread that beats and sweeps lost runs."""
import logging
import threading

from workers import identity

log = logging.getLogger("s2.worker")


def gpu_count() -> int:
    """GPUs this host can train on (0 here; every one of them on a GPU host)."""
    import torch  # safe: the solo pool never forks after this

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _housekeeping(queues: list[str], gpus: int, stop: threading.Event) -> None:
    from server.config import get_settings
    from server.runs.sweep import beat, sweep

    settings = get_settings()
    every = min(settings.worker_beat_s, settings.run_stale_after_s / 3)  # never look stale while alive

    while not stop.is_set():
        try:
            beat(identity.name(), queues, gpus)
            done = sweep()
            if done["retried"] or done["failed"] or done["resent"]:
                log.warning("sweep: %s", done)
        except Exception:  # the database may blink; keep beating
            log.exception("worker housekeeping failed")
        stop.wait(every)


def run_worker(queues: list[str], loglevel: str = "INFO") -> None:
    """Serve queues until interrupted; one run at a time (a run uses every GPU of the host)."""
    from server.runs.sweep import leave
    from workers.app import celery_app

    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gpus = gpu_count()
    if "gpu" in queues and gpus == 0:
        log.warning("listening on queue 'gpu' but this host has no GPU: GPU runs will fail here")
    stop = threading.Event()
    threading.Thread(target=_housekeeping, args=(queues, gpus, stop), daemon=True, name="s2-beat").start()
    log.info("worker %s: queues %s, %d GPU(s)", identity.name(), ",".join(queues), gpus)
    try:
        celery_app.worker_main(["worker", "--pool=solo", "--concurrency=1", f"--queues={','.join(queues)}",
                                f"--hostname=s2@{identity.name()}", f"--loglevel={loglevel}",
                                "--without-gossip", "--without-mingle", "--without-heartbeat"])
    finally:
        stop.set()
        leave(identity.name())

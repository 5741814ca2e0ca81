"""`s2 worker`: a Celery worker plus a thread that beats and sweeps lost runs.

One run at a time. On a host with one GPU or none the solo pool keeps torch warm between
runs; with several GPUs each run gets a fresh child process (prefork, one task per child),
because multi-GPU training forks ranks and CUDA must not be initialised before that.
"""

import logging
import shutil
import subprocess
import threading

from workers import identity

log = logging.getLogger("s2.worker")


def gpu_count() -> int:
    """GPUs on this host, counted with nvidia-smi so this process does not initialise CUDA."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def _warm_torch() -> None:
    """Import torch and Lightning once, before the first run (solo pool only: nothing forks later)."""
    import lightning  # noqa: F401
    import torch  # noqa: F401


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


def run_worker(queues: list[str], loglevel: str = "INFO", isolate: bool | None = None) -> None:
    """Serve queues until interrupted; isolate=True runs each task in a fresh child process."""
    from server.runs.sweep import leave
    from workers.app import celery_app

    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # banner lines, every run
    gpus = gpu_count()
    if "gpu" in queues and gpus == 0:
        log.warning("listening on queue 'gpu' but this host has no GPU: GPU runs will fail here")
    isolate = gpus > 1 if isolate is None else isolate
    identity.name()  # fixed now, so a forked child reports under the same name as our heartbeats
    pool = ["--pool=prefork", "--concurrency=1", "--max-tasks-per-child=1"] if isolate else ["--pool=solo"]
    if not isolate:
        _warm_torch()
    stop = threading.Event()
    threading.Thread(target=_housekeeping, args=(queues, gpus, stop), daemon=True, name="s2-beat").start()
    log.info(
        "worker %s: queues %s, %d GPU(s), %s",
        identity.name(),
        ",".join(queues),
        gpus,
        "a fresh process per run" if isolate else "solo pool",
    )
    try:
        celery_app.worker_main(
            [
                "worker",
                *pool,
                f"--queues={','.join(queues)}",
                f"--hostname=s2@{identity.name()}",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        stop.set()
        leave(identity.name())

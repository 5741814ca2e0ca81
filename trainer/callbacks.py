"""The run monitor: progress reports, cancellation polling and per-epoch curves."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L

from trainer.result import Cancelled

POLL_EVERY_S = 0.2  # should_stop is checked at every step but called at most this often: it may hit a database
CURVES = ("train/loss", "eval/loss", "eval/accuracy")


class RunMonitor(L.Callback):
    """Reports progress from rank 0, raises Cancelled on every rank at once, and writes curves to state_path.

    The record goes through a file because with ddp_fork the callback that keeps it lives in a child
    process (and so do progress and should_stop); the parent reads the file after fit.
    """

    def __init__(
        self,
        epochs: int,
        state_path: Path,
        max_time_s: float | None = None,
        progress: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.epochs, self.state_path, self.max_time_s = epochs, state_path, max_time_s
        self.progress, self.should_stop = progress, should_stop
        self.curves: dict[str, list[float]] = {name: [] for name in CURVES}
        self.started = self.last_poll = 0.0
        self.total_steps, self.every = 0, 1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()
        steps = trainer.estimated_stepping_batches
        self.total_steps = int(steps) if math.isfinite(steps) else 0
        self.every = max(1, int(trainer.num_training_batches) // 10)  # ~10 reports per epoch
        self._poll(trainer, force=True)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._poll(trainer)
        step = trainer.global_step
        if (step == 1 or step % self.every == 0) and outputs is not None:  # step 1: show the run is moving at once
            self._report(trainer, loss=float(outputs["loss"]))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # validation has already run for this epoch (Lightning 2 validates before on_train_epoch_end)
        # Callbacks run before the module's on_train_epoch_end, which logs train/loss: ask the module for it
        metrics = {**trainer.callback_metrics}
        epoch_loss = getattr(pl_module, "train_epoch_loss", None)
        if epoch_loss is not None and (loss := epoch_loss()) is not None:
            metrics["train/loss"] = loss
        for name in CURVES:
            if name in metrics:
                self.curves[name].append(float(metrics[name]))
        self._report(
            trainer,
            loss=self.curves["train/loss"][-1] if self.curves["train/loss"] else None,
            eval_loss=float(metrics["eval/loss"]) if "eval/loss" in metrics else None,
            eval_accuracy=float(metrics["eval/accuracy"]) if "eval/accuracy" in metrics else None,
        )
        if trainer.is_global_zero:
            self.state_path.write_text(json.dumps(self._record(trainer, epoch_done=True)))

    def _record(self, trainer: L.Trainer, epoch_done: bool = False) -> dict:
        return {"curves": self.curves, "epochs_run": trainer.current_epoch + (1 if epoch_done else 0)}

    def _poll(self, trainer: L.Trainer, force: bool = False) -> None:
        if self.should_stop is None:
            return
        now = time.monotonic()
        stop = False
        if trainer.is_global_zero and (force or now - self.last_poll >= POLL_EVERY_S):
            self.last_poll, stop = now, bool(self.should_stop())
        if trainer.world_size > 1:  # every rank must leave at the same step, or the others hang in all-reduce
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            if trainer.is_global_zero:  # tells a parent that forked us why the ranks died
                self.state_path.write_text(json.dumps({**self._record(trainer), "cancelled": True}))
            raise Cancelled(f"training cancelled at step {trainer.global_step}")

    def _report(self, trainer: L.Trainer, loss: float | None, **extra: float | None) -> None:
        if self.progress is None or not trainer.is_global_zero:
            return
        elapsed, step = time.monotonic() - self.started, trainer.global_step
        eta = elapsed / step * max(self.total_steps - step, 0) if step else None
        if self.max_time_s is not None:
            eta = max(self.max_time_s - elapsed, 0.0) if eta is None else min(eta, max(self.max_time_s - elapsed, 0.0))
        self.progress(
            {
                "epoch": trainer.current_epoch + 1,
                "epochs": self.epochs,
                "step": step,
                "total_steps": self.total_steps,
                "loss": loss,
                "eta_s": eta,
                "elapsed_s": elapsed,
                **extra,
            }
        )


class RestoreBest(L.Callback):
    """Keeps a CPU copy of the weights of the epoch with the lowest eval/loss and loads it when fit ends.

    With early stopping the last epoch is `patience` epochs past the best one. Every rank sees the same
    (reduced) eval/loss, so every rank keeps and restores the same epoch.
    """

    def __init__(self, monitor: str = "eval/loss"):
        self.monitor, self.best, self.state, self.best_epoch = monitor, math.inf, None, None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if value < self.best:
            self.best, self.best_epoch = value, trainer.current_epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)

"""The LightningModule: a template's nn.Module plus cross-entropy steps, epoch metrics, AdamW and its schedule."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ClassifierModule(L.LightningModule):
    """Single-label classification; logs train/loss, eval/loss and eval/accuracy once per epoch.

    Steps only add to running sums kept on the device (no host sync, no per-step `self.log`:
    Lightning's logging machinery costs more per call than a small model's whole step). At
    epoch end the sums are added up across ranks and logged, so the epoch means are exact
    (weighted by batch size) however the data is split between devices.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        learning_rate: float,
        weight_decay: float,
        lr_schedule: str = "constant",
        warmup_fraction: float = 0.05,
    ):
        super().__init__()
        self.net = net
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.lr_schedule, self.warmup_fraction = lr_schedule, warmup_fraction
        self._train_sums: Tensor | None = None  # [loss * n, n] of this epoch, on the device
        self._eval_sums: Tensor | None = None  # [loss * n, correct, n]
        self._train_loss: tuple[int, float] | None = None  # (epoch, mean loss) once reduced

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        n = torch.tensor(float(len(y)), device=loss.device)
        step = torch.stack([loss.detach() * n, n])
        self._train_sums = step if self._train_sums is None else self._train_sums + step
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        n = torch.tensor(float(len(y)), device=logits.device)
        step = torch.stack([F.cross_entropy(logits, y) * n, (logits.argmax(1) == y).sum().float(), n])
        self._eval_sums = step if self._eval_sums is None else self._eval_sums + step

    def on_train_epoch_start(self) -> None:
        self._train_sums, self._train_loss = None, None

    def on_validation_epoch_start(self) -> None:
        self._eval_sums = None

    def _total(self, sums: Tensor | None, width: int) -> Tensor:
        """sums added up over every rank (each rank must call this at the same point)."""
        local = sums if sums is not None else torch.zeros(width, device=self.device)
        return self.trainer.strategy.reduce(local.clone(), reduce_op="sum")

    def train_epoch_loss(self) -> float | None:
        """Mean training loss of the current epoch over all ranks; reduced once per epoch, then remembered."""
        epoch = self.current_epoch
        if self._train_loss is None or self._train_loss[0] != epoch:
            total, n = self._total(self._train_sums, 2).tolist()
            self._train_loss = (epoch, total / n if n else float("nan"))
        return None if self._train_loss[1] != self._train_loss[1] else self._train_loss[1]

    def on_validation_epoch_end(self) -> None:
        loss_sum, correct, n = self._total(self._eval_sums, 3).tolist()
        if n:  # the values are global already; sync_dist (a mean of equal values) only quiets Lightning's DDP warning
            self.log("eval/loss", loss_sum / n, sync_dist=True)
            self.log("eval/accuracy", correct / n, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        loss = self.train_epoch_loss()
        if loss is not None:
            self.log("train/loss", loss, sync_dist=True)

    def configure_optimizers(self):
        try:  # the fused kernel is ~5x faster on CPU for a large embedding table (one pass instead of ~10)
            optimizer = torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype the fused kernel does not take
            optimizer = torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer
        # planned over max_epochs: early stopping ends the run on a still-high rate, and keeps the best epoch
        total = self.trainer.estimated_stepping_batches
        total = max(1, int(total)) if math.isfinite(total) else 1
        warmup = int(self.warmup_fraction * total)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))  # cosine down to 1% of the peak

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

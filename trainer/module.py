"""The LightningModule: a template's nn.Module plus cross-entropy steps, metrics and AdamW."""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy


class ClassifierModule(L.LightningModule):
    """Single-label classification; logs train/loss, eval/loss and eval/accuracy per epoch."""

    def __init__(self, net: nn.Module, num_classes: int, learning_rate: float, weight_decay: float):
        super().__init__()
        self.net = net
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.eval_accuracy = MulticlassAccuracy(num_classes, average="micro")  # syncs across DDP ranks itself

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        # on_epoch: Lightning averages over the epoch weighted by batch_size and reduces across ranks
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("eval/loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True, batch_size=len(y))
        self.eval_accuracy(logits, y)
        self.log("eval/accuracy", self.eval_accuracy, on_epoch=True, batch_size=len(y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)

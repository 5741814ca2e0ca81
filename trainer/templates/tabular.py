"""Tabular template: an MLP that standardises its own inputs, so predict needs no side files."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from trainer.spec import TrainSpec


class MLP(nn.Module):
    """Standardise with train-split mean/std buffers (missing -> mean), then two hidden ReLU layers."""

    def __init__(self, num_features: int, hidden: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        # buffers, not parameters: saved in the state_dict, untouched by the optimiser
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        self.net = nn.Sequential(
            nn.Linear(num_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        z = (x - self.feature_mean) / self.feature_std
        return self.net(torch.nan_to_num(z, nan=0.0))  # a missing feature (NaN) reads as the train mean


def build_mlp(spec: TrainSpec, num_classes: int, data_info: dict[str, Any]) -> nn.Module:
    """mlp over data_info["features"], seeded with data_info's train-split mean/std when given."""
    model = MLP(len(data_info["features"]), spec.hidden_dim, num_classes, spec.dropout)
    if "feature_mean" in data_info:
        model.feature_mean.copy_(torch.tensor(data_info["feature_mean"], dtype=torch.float32))
        model.feature_std.copy_(torch.tensor(data_info["feature_std"], dtype=torch.float32))
    return model

"""Image templates: plain nn.Modules over (batch, channels, size, size) float tensors."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from trainer.spec import TrainSpec


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _global_pool(x: Tensor) -> Tensor:
    # mean over H, W rather than AdaptiveAvgPool2d, whose CUDA backward refuses deterministic mode
    return x.mean(dim=(2, 3))


class CNNSmall(nn.Module):
    """Three conv-BN-ReLU layers (two max-pools), global average pool, linear head."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(in_channels, width),
            nn.MaxPool2d(2),
            _conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_bn(2 * width, 4 * width),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(_global_pool(self.features(x)))


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut, as in ResNet-18."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """A stem conv and three residual stages (width, 2x, 4x; the last two halve the resolution)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.1):
        super().__init__()
        self.stem = _conv_bn(in_channels, width)
        self.stages = nn.Sequential(BasicBlock(width, width), BasicBlock(width, 2 * width, 2), BasicBlock(2 * width, 4 * width, 2))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(_global_pool(self.stages(self.stem(x))))


def build_cnn_small(spec: TrainSpec, num_classes: int, data_info: dict[str, Any]) -> nn.Module:
    """cnn_small for spec.image_channels-channel images."""
    return CNNSmall(spec.image_channels, num_classes, dropout=spec.dropout)


def build_resnet_small(spec: TrainSpec, num_classes: int, data_info: dict[str, Any]) -> nn.Module:
    """resnet_small for spec.image_channels-channel images."""
    return ResNetSmall(spec.image_channels, num_classes, dropout=spec.dropout)

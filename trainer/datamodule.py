"""The LightningDataModule over a TrainingSnapshot: stable train/eval split, decoding per item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from trainer.data import TrainingSnapshot, split_indices
from trainer.features import collate, feature_stats, make_encoder, parse_features
from trainer.spec import TrainSpec
from trainer.templates import TEMPLATES


class ExampleDataset(Dataset):
    """Rows of a snapshot; __getitem__ reads and decodes one input, keeping decoded inputs up to a byte budget.

    The budget (spec.decode_cache_mb) makes later epochs skip the blob read, hash check and decode,
    which otherwise cost more than the training step of a small model; past it, memory stays O(batch).
    """

    def __init__(
        self, snapshot: TrainingSnapshot, rows: list[int], targets: list[int], encode: Callable[[bytes, str], Tensor], cache_bytes: int = 0
    ):
        self.snapshot, self.rows, self.targets, self.encode = snapshot, rows, targets, encode
        self.cache: dict[int, Tensor] = {}
        self.cache_left = cache_bytes

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        hit = self.cache.get(i)
        if hit is not None:
            return hit, self.targets[i]
        row = self.rows[i]
        tensor = self.encode(self.snapshot.read_input(self.snapshot.inputs[row]), self.snapshot.keys[row])
        size = tensor.element_size() * tensor.nelement()
        if size <= self.cache_left:
            self.cache[i], self.cache_left = tensor, self.cache_left - size
        return tensor, self.targets[i]


def example_dataset(
    snapshot: TrainingSnapshot, rows: list[int], targets: list[int], encode: Callable[[bytes, str], Tensor], spec: TrainSpec
) -> ExampleDataset:
    """The rows as a dataset keeping decoded inputs up to the spec's decode cache budget."""
    return ExampleDataset(snapshot, rows, targets, encode, spec.decode_cache_mb << 20)


def make_loader(dataset: ExampleDataset, spec: TrainSpec, shuffle: bool = False) -> DataLoader:
    """A DataLoader over dataset with the spec's batch size and workers."""
    return DataLoader(
        dataset,
        batch_size=spec.batch_size,
        shuffle=shuffle,
        num_workers=spec.num_workers,
        persistent_workers=spec.num_workers > 0,
        collate_fn=collate,
    )


class SnapshotDataModule(L.LightningDataModule):
    """Train on the snapshot's train side, validate on its eval side; data_info describes inputs to the model
    (given: a parent model's, for a warm start; else measured on the train side)."""

    def __init__(self, snapshot: TrainingSnapshot, spec: TrainSpec, data_info: dict[str, Any] | None = None):
        super().__init__()
        self.snapshot, self.spec = snapshot, spec
        sides = split_indices(snapshot, spec.eval_fraction)
        self.train_rows, self.eval_rows = sides["train"], sides["eval"]
        self.data_info = self._data_info() if data_info is None else data_info
        self.encode = make_encoder(spec, self.data_info)
        self._datasets: dict[str, ExampleDataset] = {}

    def dataset(self, side: str) -> ExampleDataset:
        """The train or eval side's dataset, made once: what it decoded stays for every later pass (scoring too)."""
        if side not in self._datasets:
            rows = self.train_rows if side == "train" else self.eval_rows
            self._datasets[side] = example_dataset(self.snapshot, rows, self.targets(rows), self.encode, self.spec)
        return self._datasets[side]

    def _data_info(self) -> dict[str, Any]:
        if TEMPLATES[self.spec.template].modality != "tabular":
            return {}
        # one pass over the train side: feature names and standardisation stats come from train only
        snap = self.snapshot
        return feature_stats([parse_features(snap.read_input(snap.inputs[r]), snap.keys[r]) for r in self.train_rows])

    def targets(self, rows: list[int]) -> list[int]:
        """The snapshot's targets for these rows."""
        return [self.snapshot.targets[r] for r in rows]

    def train_dataloader(self) -> DataLoader:
        # Lightning re-seeds the default generator via seed_everything, so the shuffle order is reproducible
        return make_loader(self.dataset("train"), self.spec, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.dataset("eval"), self.spec)

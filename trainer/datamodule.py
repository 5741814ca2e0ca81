"""The LightningDataModule over a TrainingSnapshot: stable train/eval split, decoding per item."""
from __future__ import annotations

from typing import Any, Callable

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from trainer.data import TrainingSnapshot, split_indices
from trainer.features import collate, feature_stats, make_encoder, parse_features
from trainer.spec import TrainSpec
from trainer.templates import TEMPLATES


class ExampleDataset(Dataset):
    """Rows of a snapshot; each __getitem__ reads and decodes one input, so memory stays O(batch)."""

    def __init__(self, snapshot: TrainingSnapshot, rows: list[int], targets: list[int],
                 encode: Callable[[bytes, str], Tensor]):
        self.snapshot, self.rows, self.targets, self.encode = snapshot, rows, targets, encode

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        row = self.rows[i]
        key = self.snapshot.keys[row]
        return self.encode(self.snapshot.read_input(self.snapshot.inputs[row]), key), self.targets[i]


def make_loader(
    snapshot: TrainingSnapshot, rows: list[int], targets: list[int], encode: Callable[[bytes, str], Tensor],
    spec: TrainSpec, shuffle: bool = False,
) -> DataLoader:
    """A DataLoader over the given rows with the spec's batch size and workers."""
    return DataLoader(
        ExampleDataset(snapshot, rows, targets, encode), batch_size=spec.batch_size, shuffle=shuffle,
        num_workers=spec.num_workers, persistent_workers=spec.num_workers > 0, collate_fn=collate,
    )


class SnapshotDataModule(L.LightningDataModule):
    """Train on the snapshot's train side, validate on its eval side; data_info describes inputs to the model."""

    def __init__(self, snapshot: TrainingSnapshot, spec: TrainSpec):
        super().__init__()
        self.snapshot, self.spec = snapshot, spec
        sides = split_indices(snapshot, spec.eval_fraction)
        self.train_rows, self.eval_rows = sides["train"], sides["eval"]
        self.data_info = self._data_info()
        self.encode = make_encoder(spec, self.data_info)

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
        rows = self.train_rows
        return make_loader(self.snapshot, rows, self.targets(rows), self.encode, self.spec, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.snapshot, self.eval_rows, self.targets(self.eval_rows), self.encode, self.spec)


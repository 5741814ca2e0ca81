"""The PyTorch view of a snapshot; torch is imported only here, only when training asks for it."""

import pyarrow as pa
from torch.utils.data import Dataset

from server.blobs import BlobStore


class SnapshotDataset(Dataset):
    """Examples of a snapshot by index; input bytes are fetched (and hash-checked) on access."""

    def __init__(self, table: pa.Table, labels: tuple[str, ...], blobs: BlobStore):
        self.keys = table.column("key").to_pylist()
        self.inputs = table.column("input").to_pylist()
        index = {label: i for i, label in enumerate(labels)}
        self.targets = [index.get(label, -1) for label in table.column("label").to_pylist()]  # -1: unlabeled
        self.splits = table.column("split").to_pylist()
        self.blobs = blobs

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict:
        return {"key": self.keys[i], "input": self.blobs.get(self.inputs[i]), "label": self.targets[i], "split": self.splits[i]}

"""What the trainer reads: one dataset revision, and the stable train/eval split of its examples.

Torch-free, so the server can show which examples are held out without loading torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

TRAIN_SPLITS = frozenset({"train"})
EVAL_SPLITS = frozenset({"eval", "val", "valid", "validation", "test"})


@dataclass(frozen=True)
class TrainingSnapshot:
    """One dataset revision as the trainer sees it; knows nothing of where it is stored."""

    dataset: str
    commit: str
    modality: str  # "image" | "text" | "tabular"
    labels: tuple[str, ...]
    keys: list[str]
    inputs: list[str]  # opaque input ids (blob ids)
    targets: list[int]  # index into labels; -1 = unlabeled (never trained on or scored)
    splits: list[str | None]  # explicit split column, or None
    read_input: Callable[[str], bytes]  # input id -> bytes (image file; UTF-8 text; tabular: JSON object)

    def __len__(self) -> int:
        return len(self.keys)

    def check_shape(self) -> None:
        """Raise ValueError when the columns disagree in length or a target is out of range."""
        n = len(self.keys)
        for name in ("inputs", "targets", "splits"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"snapshot {self.name}: {name} has {len(getattr(self, name))} rows, keys has {n}")
        bad = next((k for k, t in zip(self.keys, self.targets) if not -1 <= t < len(self.labels)), None)
        if bad is not None:
            raise ValueError(f"snapshot {self.name}: example {bad!r} has a target outside the {len(self.labels)} labels")

    @property
    def name(self) -> str:
        """dataset@commit, for messages."""
        return f"{self.dataset}@{self.commit[:12]}"


def key_fraction(key: str) -> float:
    """A stable number in [0, 1) from the key's sha256: the same key always lands on the same side."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def assign_split(key: str, split: str | None, eval_fraction: float) -> str:
    """'train' or 'eval': an explicit split value wins, otherwise the key's hash decides."""
    value = (split or "").strip().lower()
    if value in TRAIN_SPLITS:
        return "train"
    if value in EVAL_SPLITS:
        return "eval"
    if value:
        valid = ", ".join(sorted(TRAIN_SPLITS | EVAL_SPLITS))
        raise ValueError(f"example {key!r} has split {split!r}; use one of {valid}, or leave it empty")
    return "eval" if key_fraction(key) < eval_fraction else "train"


def split_indices(snapshot: TrainingSnapshot, eval_fraction: float) -> dict[str, list[int]]:
    """Row indices of the labeled examples on each side, {"train": [...], "eval": [...]}; unlabeled rows are skipped."""
    sides: dict[str, list[int]] = {"train": [], "eval": []}
    for i, (key, target, split) in enumerate(zip(snapshot.keys, snapshot.targets, snapshot.splits)):
        if target >= 0:
            sides[assign_split(key, split, eval_fraction)].append(i)
    return sides


def eval_part(snapshot: TrainingSnapshot, eval_fraction: float = 0.2) -> TrainingSnapshot:
    """Only the snapshot's eval side (split "eval" on every row): a revision's held-out split as a pinned eval set."""
    sides = (assign_split(key, split, eval_fraction) for key, split in zip(snapshot.keys, snapshot.splits))
    rows = [i for i, side in enumerate(sides) if side == "eval"]
    return replace(
        snapshot,
        keys=[snapshot.keys[i] for i in rows],
        inputs=[snapshot.inputs[i] for i in rows],
        targets=[snapshot.targets[i] for i in rows],
        splits=["eval"] * len(rows),
    )

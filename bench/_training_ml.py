"""The plain-PyTorch side of the training benchmark: a hand-written training loop over the same PNGs,
and the throughput of the data path vs in-memory tensors vs the training step itself."""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, TensorDataset


def decode_png(data: bytes, size: int, channels: int) -> torch.Tensor:
    """PNG bytes -> (channels, size, size) float in [-1, 1]: the same operations as the trainer's decoder."""
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img).convert("L" if channels == 1 else "RGB")
        arr = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    arr = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    return torch.from_numpy((arr - 0.5) / 0.5)


def read_folder(root: Path, labels: list[str]) -> list[tuple[str, Path, int]]:
    """(key, path, target) of every file of an ImageFolder; the key is the path below root, as s2 import makes it."""
    index = {label: i for i, label in enumerate(labels)}
    return [(p.relative_to(root).as_posix(), p, index[p.parent.name]) for p in sorted(root.rglob("*.png"))]


def plain_train(items: list[tuple[str, Path, int]], spec, num_classes: int, epochs: int | None = None) -> dict:
    """Read and decode every PNG up front, then a plain loop: `epochs` of AdamW steps on the train side, each
    followed by one pass over the eval side (as s2 validates every epoch). Same split (by key hash), model class,
    initial seed and hyper-parameters as the s2 run. Returns seconds (total, decode) and the eval accuracy."""
    from trainer.data import assign_split
    from trainer.templates.image import CNNSmall

    epochs = epochs or spec.epochs
    t0 = time.perf_counter()
    sides: dict[str, list] = {"train": [], "eval": []}
    for key, path, target in items:
        sides[assign_split(key, None, spec.eval_fraction)].append(
            (decode_png(path.read_bytes(), spec.image_size, spec.image_channels), target)
        )
    tensors = {side: (torch.stack([x for x, _ in rows]), torch.tensor([y for _, y in rows])) for side, rows in sides.items()}
    t_decoded = time.perf_counter()
    torch.manual_seed(spec.seed)
    model = CNNSmall(spec.image_channels, num_classes, dropout=spec.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    train = DataLoader(TensorDataset(*tensors["train"]), batch_size=spec.batch_size, shuffle=True)
    evaluate = DataLoader(TensorDataset(*tensors["eval"]), batch_size=spec.batch_size)
    correct = 0
    for _ in range(epochs):
        model.train()
        for x, y in train:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in evaluate:
                correct += int((model(x).argmax(1) == y).sum())
    end = time.perf_counter()
    return {
        "seconds": end - t0,
        "decode_s": t_decoded - t0,
        "train_s": end - t_decoded,
        "accuracy": correct / len(tensors["eval"][1]),
        "train_n": len(tensors["train"][1]),
        "eval_n": len(tensors["eval"][1]),
    }


def _epoch_rate(loader, repeats: int) -> float:
    """Median samples/s of iterating the loader once (every batch materialised)."""
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        for x, _ in loader:
            n += len(x)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def data_path_rates(snapshot, spec_raw: dict, repeats: int) -> dict:
    """samples/s of: the trainer's data path (SnapshotDataModule's train DataLoader) in its first epoch (blob read +
    verify + PNG decode per item: a fresh DataModule each time) and in a later one (what the trainer keeps between
    epochs, if anything), a DataLoader over the same rows pre-decoded in memory, and cnn_small's training step."""
    from trainer.datamodule import SnapshotDataModule
    from trainer.spec import resolve_spec
    from trainer.templates import build_model

    spec = resolve_spec(spec_raw, snapshot.modality)
    torch.manual_seed(spec.seed)
    first = []
    for _ in range(repeats):
        dm = SnapshotDataModule(snapshot, spec)
        s2_loader = dm.train_dataloader()
        first.append(_epoch_rate(s2_loader, 1))
    later = _epoch_rate(s2_loader, repeats)  # the last loader's epochs 2, 3, ...
    rows = dm.train_rows
    xs = torch.stack([dm.encode(snapshot.read_input(snapshot.inputs[r]), snapshot.keys[r]) for r in rows])
    ys = torch.tensor(dm.targets(rows))
    mem_rate = _epoch_rate(DataLoader(TensorDataset(xs, ys), batch_size=spec.batch_size, shuffle=True), repeats)
    net = build_model(spec, len(snapshot.labels), dm.data_info).train()
    opt = torch.optim.AdamW(net.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    batches = [(xs[i : i + spec.batch_size], ys[i : i + spec.batch_size]) for i in range(0, len(ys), spec.batch_size)]

    def step(x, y):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for x, y in batches[:3]:  # warm-up
        step(x, y)
    step_rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for x, y in batches:
            step(x, y)
        step_rates.append(len(ys) / (time.perf_counter() - t0))
    return {
        "first": statistics.median(first),
        "later": later,
        "memory": mem_rate,
        "step": statistics.median(step_rates),
        "n": len(rows),
        "shape": tuple(xs.shape[1:]),
        "batch_size": spec.batch_size,
        "cache_mb": getattr(spec, "decode_cache_mb", None),
    }

"""The model's out-of-sample view of its own data, for the data engine.

`cross_fit` splits the labeled examples into K folds by a hash of their keys (stable across
commits: an example stays in its fold as the dataset grows) and trains K models with the run's
spec, each on the other folds, through `train` itself; each model scores the fold it never saw.
Every labeled example so gets class probabilities from a model that did not train on it: what
confident learning needs, since a model scoring its own training data has memorized its noise.

`analyze` runs the run's own model over every example, labeled or not: its probabilities (for
what to label next) and its embedding, the input of the last linear layer (for neighbours and
diversity).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from trainer.data import TrainingSnapshot, key_fraction
from trainer.datamodule import example_dataset, make_loader
from trainer.features import make_encoder
from trainer.inference import _load, predict
from trainer.spec import TrainSpec
from trainer.templates import TEMPLATES

MIN_FOLD_EXAMPLES = 2  # a fold model needs some examples of its own to train on


@dataclass
class CrossFit:
    """Out-of-sample probabilities of the labeled examples (rows in `keys` order, columns in label order)."""

    keys: list[str]
    probabilities: np.ndarray  # (n, classes) float32
    folds: int
    seconds: float


@dataclass
class Analysis:
    """The run's model over every example: probabilities and embeddings (rows in `keys` order)."""

    keys: list[str]
    probabilities: np.ndarray  # (n, classes) float32
    embeddings: np.ndarray  # (n, d) float32
    seconds: float


def fold_of(key: str, folds: int) -> int:
    """The key's fold, from a hash independent of the train/eval split's."""
    return min(folds - 1, int(key_fraction(f"fold\0{key}") * folds))


def _subset(snapshot: TrainingSnapshot, rows: list[int]) -> TrainingSnapshot:
    return replace(
        snapshot,
        keys=[snapshot.keys[i] for i in rows],
        inputs=[snapshot.inputs[i] for i in rows],
        targets=[snapshot.targets[i] for i in rows],
        splits=[snapshot.splits[i] for i in rows],
    )


def cross_fit(
    snapshot: TrainingSnapshot,
    spec: TrainSpec | dict | str | None,
    folds: int = 5,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CrossFit:
    """K models, each trained on K-1 folds of the labeled examples, scoring the fold left out.

    progress(fold_done, folds) after each fold. ValueError when there are too few labeled examples
    for K folds (each fold model needs examples of its own).
    """
    from trainer.train import train  # the fold models are trained exactly as the run's model was

    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    started = time.monotonic()
    labeled = [i for i, t in enumerate(snapshot.targets) if t >= 0]
    fold = {i: fold_of(snapshot.keys[i], folds) for i in labeled}
    sizes = np.bincount(list(fold.values()), minlength=folds)
    if len(labeled) < folds * MIN_FOLD_EXAMPLES or (sizes == 0).any():
        raise ValueError(f"{snapshot.name} has {len(labeled)} labeled examples: too few for {folds}-fold cross-fitting")
    probs = np.zeros((len(labeled), len(snapshot.labels)), dtype=np.float32)
    where = {row: n for n, row in enumerate(labeled)}
    for f in range(folds):
        if should_stop is not None and should_stop():
            from trainer.result import Cancelled

            raise Cancelled()
        held = [i for i in labeled if fold[i] == f]
        rest = [i for i in labeled if fold[i] != f]
        model = train(_subset(snapshot, rest), spec, should_stop=should_stop)
        for key_row, (_, _, p) in zip(held, predict(model.weights, _subset(snapshot, held))):
            probs[where[key_row]] = p
        if progress is not None:
            progress(f + 1, folds)
    return CrossFit([snapshot.keys[i] for i in labeled], probs, folds, time.monotonic() - started)


def _last_linear(net: nn.Module) -> nn.Linear:
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no linear layer to take embeddings from")
    return linears[-1]  # every template ends in its classifier's linear layer


@torch.no_grad()
def analyze(weights: bytes, snapshot: TrainingSnapshot, *, device: str | None = None) -> Analysis:
    """The model's probabilities and embeddings for every example of the snapshot, labeled or not."""
    started = time.monotonic()
    net, spec, _, data_info = _load(weights)
    if snapshot.modality != TEMPLATES[spec.template].modality:
        raise ValueError(f"model reads {TEMPLATES[spec.template].modality} data but {snapshot.name} is {snapshot.modality}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net.eval().to(device)
    captured: list[torch.Tensor] = []
    hook = _last_linear(net).register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().float().cpu()))
    rows = list(range(len(snapshot.keys)))
    loader = make_loader(example_dataset(snapshot, rows, [-1] * len(rows), make_encoder(spec, data_info), spec), spec)
    probs = []
    try:
        for x, _ in loader:
            probs.append(torch.softmax(net(x.to(device)).float(), dim=-1).cpu())
    finally:
        hook.remove()
    if not probs:
        return Analysis([], np.zeros((0, len(snapshot.labels)), np.float32), np.zeros((0, 0), np.float32), time.monotonic() - started)
    embeddings = torch.cat([c.flatten(1) for c in captured]).numpy()
    return Analysis(list(snapshot.keys), torch.cat(probs).numpy(), embeddings, time.monotonic() - started)

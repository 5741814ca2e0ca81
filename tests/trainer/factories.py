"""Factories for TrainingSnapshots over real, small data: sklearn's bundled digits and wine, generated text."""

from __future__ import annotations

import hashlib
import io
import json
import random
from functools import cache

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits, load_wine

from trainer.data import TrainingSnapshot

TOPICS = {
    "sport": "match goal team coach player score league season stadium referee win cup",
    "cooking": "recipe oven flour sugar butter bake pan salt pepper dinner taste knife",
    "space": "orbit rocket planet moon star galaxy launch astronaut telescope comet mars nasa",
}
NOISE = "the a of and to in is it that with for on was as at by this from very really".split()


def make_snapshot(
    modality: str, labels: list[str], items: list[tuple[str, bytes, int, str | None]], dataset: str = "test", commit: str = "0" * 40
) -> TrainingSnapshot:
    """A snapshot over in-memory (key, input bytes, target, split) rows; inputs are content-addressed like blobs."""
    blobs = {hashlib.sha256(data).hexdigest(): data for _, data, _, _ in items}
    return TrainingSnapshot(
        dataset=dataset,
        commit=commit,
        modality=modality,
        labels=tuple(labels),
        keys=[k for k, _, _, _ in items],
        inputs=[hashlib.sha256(d).hexdigest() for _, d, _, _ in items],
        targets=[t for _, _, t, _ in items],
        splits=[s for _, _, _, s in items],
        read_input=blobs.__getitem__,
    )


def png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 grayscale array."""
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@cache
def digit_items() -> tuple[tuple[str, bytes, int, None], ...]:
    """The 1,797 8x8 digits as PNGs (values 0-16 scaled to 0-255), keys d0000..."""
    d = load_digits()
    return tuple((f"d{i:04d}", png(img * 255 / 16), int(t), None) for i, (img, t) in enumerate(zip(d.images, d.target)))


def digits(n: int | None = None) -> TrainingSnapshot:
    """The digits (the first n of them) as an image snapshot labeled "0".."9"."""
    return make_snapshot("image", [str(i) for i in range(10)], list(digit_items()[:n]), dataset="digits")


def topic_texts(n: int, seed: int = 0) -> list[tuple[str, bytes, int, None]]:
    """Sentences of 6-12 words: a few from one topic's list, the rest shared noise words."""
    rng = random.Random(seed)
    names = list(TOPICS)
    items = []
    for i in range(n):
        target = rng.randrange(len(names))
        words = rng.sample(TOPICS[names[target]].split(), 3) + [rng.choice(NOISE) for _ in range(rng.randint(3, 9))]
        rng.shuffle(words)
        items.append((f"t{i:04d}", " ".join(words).encode(), target, None))
    return items


def topics(n: int = 600, seed: int = 0) -> TrainingSnapshot:
    """The generated topic sentences as a text snapshot."""
    return make_snapshot("text", list(TOPICS), topic_texts(n, seed), dataset="topics")


def wine(splits: dict[int, str] | None = None) -> TrainingSnapshot:
    """sklearn's wine (178 rows, 13 features) as JSON feature objects; splits maps row -> explicit split."""
    w = load_wine()
    items = []
    for i, (row, t) in enumerate(zip(w.data, w.target)):
        features = json.dumps(dict(zip(w.feature_names, map(float, row)))).encode()
        items.append((f"w{i:03d}", features, int(t), (splits or {}).get(i)))
    return make_snapshot("tabular", [str(n) for n in w.target_names], items, dataset="wine")

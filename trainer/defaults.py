"""The compiler's defaults: what a spec leaves unset (None) is chosen per modality and template, then from the data.

Two stages, so the server can resolve and hash a spec without reading data or loading torch:
  * resolve_spec (trainer.spec) fills MODALITY_DEFAULTS / TEMPLATE_DEFAULTS: data-free choices;
  * fit_to_data, at the start of train(), sizes the rest from the train side: batch size and epochs from the
    number of examples, image size and channels from the images, max_len from the text lengths, hashed
    vocabulary from the distinct tokens, embedding width from the number of classes, early-stopping patience
    from the chosen epochs (none when the user set epochs: those are run in full).
A knob the user set is never touched; a sized spec (no None left) goes through fit_to_data unchanged.
A warm start (fit_to_data(..., warm=True): the training starts from a parent model's weights) gets a fine-tune's
schedule for what is unset: WARM_EPOCHS_FACTOR of the epochs, WARM_LR_FACTOR of the peak rate, a shorter patience.
"""

from __future__ import annotations

import io
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.data import TrainingSnapshot
    from trainer.spec import TrainSpec

# Data-free defaults. The learning rate is the peak of a warmup + cosine schedule (AdamW). A mean-of-embeddings
# text model needs ~10x the usual 1e-3: each step moves only the rows of the tokens in the batch, so at 1e-3 a
# few hundred steps leave the embeddings near their random start and the model predicts the majority class.
MODALITY_DEFAULTS: dict[str, dict[str, Any]] = {
    "image": {"learning_rate": 3e-3, "lr_schedule": "cosine"},
    "text": {"learning_rate": 1e-2, "lr_schedule": "cosine"},
    "tabular": {"learning_rate": 3e-3, "lr_schedule": "cosine"},
}
TEMPLATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "transformer_small": {"learning_rate": 1e-3},  # attention layers do not take the bag's 1e-2
}

MIN_STEPS = {"image": 600, "text": 300, "tabular": 400}  # optimiser steps the default epochs plan for, at least
# A warm start (fine-tuning the parent commit's model on a changed revision) begins near a minimum: it plans about
# a third of a scratch run's epochs, at a lower peak rate where the template allows, so that what the parent learned
# survives the first steps. Not for the embedding bag: below its 1e-2 its rows hardly move (see above), and a fine-tune
# that cannot move cannot learn what the commit changed (bench/incremental.py: a fix of 1% of the labels).
WARM_EPOCHS_FACTOR, WARM_MIN_EPOCHS = 0.3, 2
WARM_LR_FACTOR = {"cnn_small": 0.1, "resnet_small": 0.1, "ngram_bag": 1.0, "transformer_small": 0.3, "mlp": 0.3}
MIN_EPOCHS, MAX_EPOCHS = 10, 100
SAMPLE = 2000  # train examples read to size the text knobs (evenly spaced); images: SAMPLE_IMAGES headers
SAMPLE_IMAGES = 64
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P;L"})
_WORD = re.compile(r"\w+")


def _next_pow2(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _evenly(rows: list[int], k: int) -> list[int]:
    if len(rows) <= k:
        return rows
    step = len(rows) / k
    return [rows[int(i * step)] for i in range(k)]


def batch_size_for(n_train: int) -> int:
    """64, or smaller when there are few examples (more, noisier steps generalise better on small data)."""
    return 64 if n_train >= 1024 else 32 if n_train >= 256 else 16


def epochs_for(n_train: int, batch_size: int, modality: str, warm: bool = False) -> int:
    """Enough epochs for MIN_STEPS optimiser steps, within [MIN_EPOCHS, MAX_EPOCHS]; early stopping ends sooner.

    warm: a fine-tune's share of that (WARM_EPOCHS_FACTOR), at least WARM_MIN_EPOCHS."""
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    epochs = _clamp(math.ceil(MIN_STEPS[modality] / steps_per_epoch), MIN_EPOCHS, MAX_EPOCHS)
    return max(WARM_MIN_EPOCHS, math.ceil(epochs * WARM_EPOCHS_FACTOR)) if warm else epochs


def learning_rate_for(template: str, warm: bool = False) -> float:
    """The template's peak rate (MODALITY_DEFAULTS, TEMPLATE_DEFAULTS); a warm start's is WARM_LR_FACTOR of it."""
    from trainer.templates import TEMPLATES

    rate = {**MODALITY_DEFAULTS[TEMPLATES[template].modality], **TEMPLATE_DEFAULTS.get(template, {})}["learning_rate"]
    return rate * WARM_LR_FACTOR.get(template, 0.3) if warm else rate


def image_sizing(snapshot: TrainingSnapshot, rows: list[int]) -> dict[str, int]:
    """image_size: the median longer side of a sample (headers only), within [8, 64], a multiple of 4;
    image_channels: 1 when every sampled image is grayscale, else 3."""
    from PIL import Image

    sides, gray = [], True
    for r in _evenly(rows, SAMPLE_IMAGES):
        try:
            with Image.open(io.BytesIO(snapshot.read_input(snapshot.inputs[r]))) as img:  # lazy: reads the header
                sides.append(max(img.size))
                gray = gray and img.mode in GRAY_MODES
        except (OSError, ValueError):
            continue  # training reports undecodable images with their key
    if not sides:
        return {"image_size": 32, "image_channels": 3}
    median = sorted(sides)[len(sides) // 2]
    return {"image_size": _clamp(4 * math.ceil(median / 4), 8, 64), "image_channels": 1 if gray else 3}


def text_sizing(snapshot: TrainingSnapshot, rows: list[int], ngrams: int, transformer: bool) -> dict[str, int]:
    """max_len: the 95th percentile of words per text (a multiple of 16; at most 512 for attention, 2048 else);
    text_buckets: ~2 buckets per distinct token (bigrams too for an n-gram bag) seen in a sample, as a power of two."""
    lengths, vocab = [], set()
    sample = _evenly(rows, SAMPLE)
    for r in sample:
        words = _WORD.findall(snapshot.read_input(snapshot.inputs[r]).decode("utf-8", errors="replace").lower())
        lengths.append(len(words))
        vocab.update(words)
        if ngrams >= 2:
            vocab.update(zip(words, words[1:]))
    lengths.sort()
    p95 = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else 16
    max_len = _clamp(16 * math.ceil(p95 / 16), 16, 512 if transformer else 2048)
    # tokens unseen in the sample still come: scale the distinct count by how much of the train side was read
    distinct = len(vocab) * (len(rows) / max(len(sample), 1)) ** 0.5
    return {"max_len": max_len, "text_buckets": _clamp(_next_pow2(2 * distinct), 1 << 12, 1 << 15)}


def fit_to_data(spec: TrainSpec, snapshot: TrainingSnapshot, train_rows: list[int], warm: bool = False) -> TrainSpec:
    """The resolved spec with every knob still None chosen from the snapshot's train side.

    warm: the training starts from a parent model's weights (trainer.warm), so the unset schedule is a fine-tune's.
    """
    from trainer.spec import resolve_spec
    from trainer.templates import TEMPLATES

    spec = resolve_spec(spec, snapshot.modality)
    template = TEMPLATES[spec.template]
    n = len(train_rows)
    update: dict[str, Any] = {}
    if spec.learning_rate is None:  # resolve_spec leaves it to here when a warm start is asked for
        update["learning_rate"] = learning_rate_for(spec.template, warm)
    if spec.batch_size is None:
        update["batch_size"] = batch_size_for(n)
    if spec.epochs is None:
        update["epochs"] = epochs_for(n, update.get("batch_size", spec.batch_size), template.modality, warm)
    if spec.early_stopping_patience is None:
        # chosen epochs are a ceiling that early stopping cuts short; epochs the user set are run in full
        if "epochs" not in update:
            update["early_stopping_patience"] = 0
        else:  # a fine-tune's few epochs leave little to wait for
            update["early_stopping_patience"] = max(2, update["epochs"] // 3) if warm else max(5, update["epochs"] // 5)
    if template.modality == "image" and (spec.image_size is None or spec.image_channels is None):
        sized = image_sizing(snapshot, train_rows)
        update.update({k: v for k, v in sized.items() if getattr(spec, k) is None})
    if template.modality == "text":
        if spec.max_len is None or spec.text_buckets is None:
            sized = text_sizing(snapshot, train_rows, template.ngrams, transformer=spec.template == "transformer_small")
            update.update({k: v for k, v in sized.items() if getattr(spec, k) is None})
        if spec.embed_dim is None:
            classes = len({snapshot.targets[r] for r in train_rows})
            update["embed_dim"] = _clamp(_next_pow2(4 * classes), 64, 256)
    # knobs of other modalities are unused; fill them so the saved spec has no None (predict rebuilds from it)
    for key, value in (("image_size", 32), ("image_channels", 3), ("text_buckets", 1 << 15), ("max_len", 256), ("embed_dim", 64)):
        if getattr(spec, key) is None and key not in update:
            update[key] = value
    return spec.model_copy(update=update)

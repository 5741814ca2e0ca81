"""Turning one example's bytes into a tensor, per modality; shared by training and predict."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from trainer.spec import TrainSpec
from trainer.templates import TEMPLATES

PAD_ID, EMPTY_ID = 0, 1  # reserved text ids; hashed tokens land in [2, text_buckets)
_WORD = re.compile(r"\w+")


def decode_image(data: bytes, key: str, *, size: int, channels: int) -> Tensor:
    """Image file bytes -> (channels, size, size) float tensor in [-1, 1]."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = ImageOps.exif_transpose(img).convert("L" if channels == 1 else "RGB")
            arr = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"example {key!r}: cannot decode image ({exc})") from None
    arr = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    return torch.from_numpy((arr - 0.5) / 0.5)


@functools.lru_cache(maxsize=1 << 16)
def _bucket(token: str, buckets: int) -> int:
    # blake2b, not hash(): Python's str hash is salted per process, ids must survive a restart
    h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return 2 + h % (buckets - 2)


def encode_text(data: bytes, key: str, *, buckets: int, max_len: int, ngrams: int) -> Tensor:
    """UTF-8 text -> 1-D LongTensor of hashed word ids (plus word-bigram ids when ngrams >= 2)."""
    words = _WORD.findall(data.decode("utf-8", errors="replace").lower())[:max_len]
    ids = [_bucket(w, buckets) for w in words]
    if ngrams >= 2:
        ids += [_bucket(f"{a} {b}", buckets) for a, b in zip(words, words[1:])]
    return torch.tensor(ids or [EMPTY_ID], dtype=torch.long)  # never empty: an all-padding row has no mean


def parse_features(data: bytes, key: str) -> dict[str, float]:
    """A JSON object of features -> {name: float}; null is NaN (missing), numeric strings are accepted."""
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"example {key!r}: tabular input is not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"example {key!r}: tabular input must be a JSON object of features, got {type(obj).__name__}")
    out = {}
    for name, value in obj.items():
        try:
            out[name] = math.nan if value is None else float(value)  # bools become 0/1
        except (TypeError, ValueError):
            raise ValueError(f"example {key!r}: feature {name!r} is {value!r}, not a number; tabular templates read numbers only") from None
    return out


def encode_tabular(data: bytes, key: str, *, features: tuple[str, ...]) -> Tensor:
    """A JSON object -> float vector in the stored feature order; absent features are NaN."""
    row = parse_features(data, key)
    return torch.tensor([row.get(f, math.nan) for f in features], dtype=torch.float32)


def feature_stats(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Sorted feature names and their mean/std over the given (train) rows, ignoring missing values."""
    features = sorted({name for row in rows for name in row})
    matrix = np.array([[row.get(f, math.nan) for f in features] for row in rows], dtype=np.float64)
    matrix = matrix.reshape(-1, len(features))
    present = ~np.isnan(matrix)
    count = present.sum(0)
    mean = np.where(count > 0, np.nansum(matrix, 0) / np.maximum(count, 1), 0.0)
    var = np.where(count > 0, np.nansum((matrix - mean) ** 2, 0) / np.maximum(count, 1), 1.0)
    std = np.sqrt(var)
    std[std < 1e-12] = 1.0  # a constant feature carries no signal; avoid dividing by zero
    return {"features": features, "feature_mean": mean.tolist(), "feature_std": std.tolist()}


def make_encoder(spec: TrainSpec, data_info: dict[str, Any]) -> Callable[[bytes, str], Tensor]:
    """The (bytes, key) -> tensor function for a resolved spec; picklable, for DataLoader workers."""
    template = TEMPLATES[spec.template]
    if template.modality == "image":
        return functools.partial(decode_image, size=spec.image_size, channels=spec.image_channels)
    if template.modality == "text":
        return functools.partial(encode_text, buckets=spec.text_buckets, max_len=spec.max_len, ngrams=template.ngrams)
    return functools.partial(encode_tabular, features=tuple(data_info["features"]))


def collate(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Stack inputs (right-padding 1-D token rows with PAD_ID) and targets."""
    xs, ys = zip(*batch)
    if xs[0].dtype == torch.long:
        x = torch.nn.utils.rnn.pad_sequence(list(xs), batch_first=True, padding_value=PAD_ID)
    else:
        x = torch.stack(xs)
    return x, torch.tensor(ys, dtype=torch.long)

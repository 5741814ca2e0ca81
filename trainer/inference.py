"""The weights file (safetensors + metadata) and batch inference from it."""

from __future__ import annotations

import json
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from trainer.data import TrainingSnapshot
from trainer.datamodule import example_dataset, make_loader
from trainer.evaluate import score
from trainer.features import make_encoder
from trainer.spec import TrainSpec, load_spec
from trainer.templates import TEMPLATES, build_model

WEIGHTS_FORMAT = "s2-trainer/1"


def _canonical(blob: bytes) -> bytes:
    """Rewrite a safetensors header with sorted keys: the library emits metadata in hash-map order, so
    identical weights would otherwise hash differently from run to run."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    text = json.dumps(
        {"__metadata__": dict(sorted(meta.items())), **dict(sorted(header.items()))}, separators=(",", ":"), ensure_ascii=False
    ).encode()
    text += b" " * (-len(text) % 8)  # keep tensor data 8-byte aligned, as the library does
    return len(text).to_bytes(8, "little") + text + blob[8 + n :]


def save_weights(net: nn.Module, spec: TrainSpec, labels: list[str], data_info: dict[str, Any]) -> bytes:
    """safetensors bytes of the net's state_dict with everything needed to rebuild it in the metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "spec": spec.canonical_json(),
        "labels": json.dumps(list(labels)),
        "template": spec.template,
        "modality": TEMPLATES[spec.template].modality,
        "data_info": json.dumps(data_info, sort_keys=True),
    }
    return _canonical(save_tensors(state, metadata=metadata))


def read_metadata(weights: bytes) -> dict[str, str]:
    """The metadata of a weights file; ValueError when it is not one this trainer wrote."""
    try:
        n = int.from_bytes(weights[:8], "little")
        meta = json.loads(weights[8 : 8 + n]).get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError):
        meta = {}
    if meta.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"not an s2 trainer weights file (expected format {WEIGHTS_FORMAT!r})")
    return meta


def _load(weights: bytes) -> tuple[nn.Module, TrainSpec, list[str], dict[str, Any]]:
    meta = read_metadata(weights)
    spec, labels, data_info = load_spec(meta["spec"]), json.loads(meta["labels"]), json.loads(meta["data_info"])
    net = build_model(spec, len(labels), data_info)
    net.load_state_dict(load_tensors(weights))
    return net.eval(), spec, labels, data_info


def load_model(weights: bytes) -> tuple[nn.Module, TrainSpec, list[str]]:
    """Rebuild (net in eval mode on CPU, resolved spec, label names) from a weights file."""
    net, spec, labels, _ = _load(weights)
    return net, spec, labels


def predict(
    weights: bytes, snapshot: TrainingSnapshot, *, device: str | None = None, batch_size: int | None = None
) -> list[tuple[str, int, list[float]]]:
    """(key, predicted label index, probabilities in label order) for every example, labeled or not."""
    net, spec, _, data_info = _load(weights)
    modality = TEMPLATES[spec.template].modality
    if snapshot.modality != modality:
        raise ValueError(f"model reads {modality} data but snapshot {snapshot.name} is {snapshot.modality}")
    if batch_size:
        spec = spec.model_copy(update={"batch_size": batch_size})
    rows = list(range(len(snapshot.keys)))
    loader = make_loader(example_dataset(snapshot, rows, [-1] * len(rows), make_encoder(spec, data_info), spec), spec)
    probs, _ = score(net, loader, device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return [(snapshot.keys[r], int(p.argmax()), p.tolist()) for r, p in zip(rows, probs)]

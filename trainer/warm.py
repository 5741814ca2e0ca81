"""Warm starts (incremental compile): a revision's model starts from a parent model's weights instead of at random.

Which parent is the server's choice (the model of the commit before); whether its weights can start this
training is decided here, from the weights file alone: the same modality, template and label list, the
same architecture knobs (those the spec sets must equal the parent's; those it leaves unset are taken
from the parent), and for tables the same features. The schedule of a warm start is a fine-tune's
(trainer.defaults: fewer epochs, a lower peak rate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from torch import nn

from trainer.data import TrainingSnapshot, split_indices
from trainer.features import parse_features
from trainer.inference import read_metadata
from trainer.spec import TrainSpec, load_spec, resolve_spec

# the knobs that shape a template's parameters (or, for max_len, what its positions mean), per modality
ARCHITECTURE = {
    "image": ("image_size", "image_channels"),
    "text": ("text_buckets", "embed_dim", "max_len"),
    "tabular": ("hidden_dim",),
}


@dataclass(frozen=True)
class Parent:
    """A parent model as a warm start reads it: its sized spec, label list, data_info and weights file."""

    spec: TrainSpec
    labels: list[str]
    data_info: dict[str, Any]
    weights: bytes


def read_parent(weights: bytes) -> Parent:
    """The parent model in a weights file; ValueError when the file is not one this trainer wrote."""
    meta = read_metadata(weights)
    return Parent(load_spec(meta["spec"]), json.loads(meta["labels"]), json.loads(meta["data_info"]), weights)


def warm_start_problem(weights: bytes, snapshot: TrainingSnapshot, spec: TrainSpec | dict | str | None) -> str | None:
    """Why the model in `weights` cannot start training `snapshot` with `spec`; None when it can."""
    try:
        parent = read_parent(weights)
    except ValueError as exc:
        return f"its weights cannot be read ({exc})"
    spec = resolve_spec(spec, snapshot.modality)
    if parent.spec.template != spec.template:
        return f"it is a {parent.spec.template} model and this run trains a {spec.template}"
    if parent.labels != list(snapshot.labels):
        return f"its labels ({', '.join(parent.labels)}) are not this dataset's ({', '.join(snapshot.labels)})"
    for knob in ARCHITECTURE[snapshot.modality]:
        mine, theirs = getattr(spec, knob), getattr(parent.spec, knob)
        if mine is not None and mine != theirs:
            return f"the spec sets {knob} {mine}, the parent model was built with {theirs}"
    if snapshot.modality == "tabular":
        rows = split_indices(snapshot, spec.eval_fraction)["train"]
        mine = {name for r in rows for name in parse_features(snapshot.read_input(snapshot.inputs[r]), snapshot.keys[r])}
        theirs = set(parent.data_info.get("features", []))
        if mine != theirs:
            added, gone = sorted(mine - theirs), sorted(theirs - mine)
            return (
                "the features changed since it was trained"
                + (f" (new: {', '.join(added)})" if added else "")
                + (f" (gone: {', '.join(gone)})" if gone else "")
            )
    return None


def inherit_architecture(spec: TrainSpec, parent: Parent, modality: str) -> TrainSpec:
    """spec with the architecture knobs it leaves unset taken from the parent's (so the parent's weights fit)."""
    return spec.model_copy(update={k: getattr(parent.spec, k) for k in ARCHITECTURE[modality] if getattr(spec, k) is None})


def load_parent_weights(net: nn.Module, parent: Parent) -> None:
    """Copy the parent's parameters and buffers into net (built with the inherited architecture)."""
    from safetensors.torch import load as load_tensors

    net.load_state_dict(load_tensors(parent.weights))

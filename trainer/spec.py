"""The training spec: a typed, hashable description of how to compile a dataset revision into weights.

Torch-free on purpose, so the server and the Celery parent can validate specs without loading torch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trainer.defaults import MODALITY_DEFAULTS, TEMPLATE_DEFAULTS
from trainer.templates import DEFAULT_TEMPLATE, MODALITIES, TEMPLATES


class TrainSpec(BaseModel):
    """How to train: template, optimisation, hardware and input-shaping knobs; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # None on a knob: "not set", chosen by the compiler. resolve_spec fills the modality's data-free defaults
    # (trainer.defaults.MODALITY_DEFAULTS); train() sizes the rest from the data (trainer.defaults.fit_to_data).
    # A value the user sets is never changed.
    template: str | None = None  # None: the modality's default template
    epochs: int | None = Field(None, ge=1, le=100_000)  # most epochs; None: enough steps for the data's size
    batch_size: int | None = Field(None, ge=1, le=1 << 20)  # None: 64, smaller for small data
    learning_rate: float | None = Field(None, gt=0)  # peak rate of the schedule; None: the modality's default
    lr_schedule: Literal["constant", "cosine"] | None = None  # cosine: linear warmup, then cosine decay to ~0
    warmup_fraction: float = Field(0.05, ge=0, lt=1)  # share of the planned steps spent warming up (cosine)
    weight_decay: float = Field(0.01, ge=0)  # AdamW's decoupled decay
    seed: int = Field(0, ge=0, le=2**32 - 1)  # numpy and torch seeds are 32-bit safe
    warm_start: bool = False  # start from the parent commit's model (incremental compile): a shorter, gentler schedule
    max_time_s: float | None = Field(None, gt=0)  # wall-clock budget for fit; stops after the current step
    early_stopping_patience: int | None = Field(None, ge=0)  # epochs without eval/loss improvement; 0: off
    restore_best: bool = True  # with early stopping: end on the weights of the best eval/loss epoch
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int | str = "auto"  # as Lightning takes it: "auto", a count, or "0,1"
    num_nodes: int = Field(1, ge=1, le=4096)
    strategy: Literal["auto", "ddp", "ddp_fork"] = "auto"  # auto: ddp_fork for several devices, see train._strategy
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"  # mixed precision pays off on GPUs
    num_workers: int = Field(0, ge=0, le=256)  # DataLoader worker processes
    decode_cache_mb: int = Field(512, ge=0, le=1 << 20)  # decoded inputs kept between epochs, per loader (and worker)
    eval_fraction: float = Field(0.2, gt=0, lt=1)  # share of keys (by key hash) held out as "eval"
    image_size: int | None = Field(None, ge=4, le=4096)  # images are resized to image_size x image_size; None: from the images
    image_channels: Literal[1, 3] | None = None  # 1: grayscale, 3: RGB; None: 1 when the images are grayscale
    text_buckets: int | None = Field(None, ge=16, le=1 << 24)  # hashed-token vocabulary size (ids 0, 1 reserved); None: from the vocabulary
    max_len: int | None = Field(None, ge=1, le=1 << 16)  # words kept per text; None: from the text lengths
    embed_dim: int | None = Field(None, ge=4)  # text embedding width; None: from the number of classes
    hidden_dim: int = Field(128, ge=1)  # tabular MLP width
    dropout: float = Field(0.1, ge=0, lt=1)

    @field_validator("devices")
    @classmethod
    def _devices_lightning_accepts(cls, value: int | str) -> int | str:
        text = str(value).strip()
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if text == "auto" or text == "-1" or (parts and all(p.isdigit() for p in parts) and text != "0"):
            return value
        raise ValueError('use "auto", a device count >= 1, -1 for all, or indices like "0,1"')

    def canonical_json(self) -> str:
        """The spec as compact JSON with sorted keys: what is hashed and saved with the weights."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """sha256 (hex) of the canonical JSON; call it on the resolved spec."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _describe(error: ValidationError) -> str:
    """Turn pydantic's report into one line per bad key, naming the key."""
    valid = ", ".join(TrainSpec.model_fields)
    lines = []
    for err in error.errors():
        key = ".".join(str(p) for p in err["loc"]) or "spec"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r} in training spec (valid keys: {valid})")
        else:
            lines.append(f"bad value for {key!r} in training spec: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def load_spec(source: str | bytes | dict[str, Any] | TrainSpec | None) -> TrainSpec:
    """Parse a spec from JSON text, a dict, or None (all defaults); ValueError names each bad key."""
    if isinstance(source, TrainSpec):
        return source
    if source is None:
        data: Any = {}
    elif isinstance(source, (str, bytes)):
        text = source.decode() if isinstance(source, bytes) else source
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"training spec is not valid JSON: {exc}") from None
    else:
        data = source
    if not isinstance(data, dict):
        raise ValueError(f"training spec must be a JSON object, got {type(data).__name__}")
    try:
        return TrainSpec.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None


def resolve_spec(spec: TrainSpec | dict[str, Any] | str | None, modality: str) -> TrainSpec:
    """Fill in the modality's default template and data-free defaults (the data-sized knobs stay None until train); ValueError for an unknown modality or a template that does not fit."""
    spec = load_spec(spec)
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of: {', '.join(MODALITIES)}")
    fitting = [name for name, t in TEMPLATES.items() if t.modality == modality]
    name = spec.template or DEFAULT_TEMPLATE[modality]
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r} for {modality} data; use one of: {', '.join(fitting)}")
    if TEMPLATES[name].modality != modality:
        raise ValueError(f"template {name!r} is for {TEMPLATES[name].modality} data, not {modality}; use one of: {', '.join(fitting)}")
    defaults = {**MODALITY_DEFAULTS[modality], **TEMPLATE_DEFAULTS.get(name, {})}
    if spec.warm_start:  # the peak rate then depends on whether a parent is found: fit_to_data picks it
        defaults.pop("learning_rate")
    unset = {k: v for k, v in defaults.items() if getattr(spec, k) is None}
    return spec.model_copy(update={"template": name, **unset})

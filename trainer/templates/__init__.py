"""The template registry: name -> (modality, builder), torch-free until a model is actually built."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from trainer.spec import TrainSpec

MODALITIES = ("image", "text", "tabular")


@dataclass(frozen=True)
class Template:
    """A model family: the modality it reads, where its builder lives, and how text is tokenised for it."""

    modality: str
    builder: str  # "module:function", imported on first build so the registry costs no torch import
    ngrams: int = 1  # text only: 2 adds hashed word bigrams to the unigrams


TEMPLATES: dict[str, Template] = {
    "cnn_small": Template("image", "trainer.templates.image:build_cnn_small"),
    "resnet_small": Template("image", "trainer.templates.image:build_resnet_small"),
    "ngram_bag": Template("text", "trainer.templates.text:build_ngram_bag", ngrams=2),
    "transformer_small": Template("text", "trainer.templates.text:build_transformer_small"),
    "mlp": Template("tabular", "trainer.templates.tabular:build_mlp"),
}
DEFAULT_TEMPLATE = {"image": "cnn_small", "text": "ngram_bag", "tabular": "mlp"}


def build_model(spec: TrainSpec, num_classes: int, data_info: dict[str, Any]) -> nn.Module:
    """Build the plain nn.Module named by a resolved spec's template."""
    module_name, func = TEMPLATES[spec.template].builder.split(":")
    return getattr(importlib.import_module(module_name), func)(spec, num_classes, data_info)

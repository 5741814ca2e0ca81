"""Text templates over (batch, length) hashed-token ids; id 0 is padding (see trainer.features)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from trainer.spec import TrainSpec


class NgramBag(nn.Module):
    """fastText-style classifier: mean of hashed uni/bi-gram embeddings, then a linear layer."""

    def __init__(self, buckets: int, dim: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.EmbeddingBag(buckets, dim, mode="mean", padding_idx=0)  # padding is left out of the mean
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.embed(ids))


class TransformerSmall(nn.Module):
    """Hashed-token + learned position embeddings, a 2-layer pre-norm TransformerEncoder, masked mean pool."""

    def __init__(self, buckets: int, dim: int, max_len: int, num_classes: int, dropout: float = 0.1, layers: int = 2):
        super().__init__()
        heads = next(h for h in (4, 2, 1) if dim % h == 0)
        self.embed = nn.Embedding(buckets, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True)
        # nested tensors only pay off for very ragged batches and do not apply to pre-norm layers anyway
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        pad = ids == 0  # every row keeps >= 1 real token (the encoder maps empty texts to id 1)
        x = self.embed(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return self.head(self.norm((x * keep).sum(1) / keep.sum(1)))


def build_ngram_bag(spec: TrainSpec, num_classes: int, data_info: dict[str, Any]) -> nn.Module:
    """ngram_bag with spec.text_buckets buckets of spec.embed_dim."""
    return NgramBag(spec.text_buckets, spec.embed_dim, num_classes, spec.dropout)


def build_transformer_small(spec: TrainSpec, num_classes: int, data_info: dict[str, Any]) -> nn.Module:
    """transformer_small reading at most spec.max_len tokens."""
    return TransformerSmall(spec.text_buckets, spec.embed_dim, spec.max_len, num_classes, spec.dropout)

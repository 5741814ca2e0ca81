"""The data engine's ranking math: pure numpy over a model's out-of-sample view of the data (no SQL, no torch).

- `label_errors`: confident learning (per-class thresholds) ranks examples whose given label the
  model confidently disagrees with, with the label it suggests instead.
- `active`: what to label next, by uncertainty (margin, entropy) with diversity on the embeddings.
- `agreement`: how far independent labelers agree (Krippendorff's alpha, Fleiss' kappa, pairwise
  Cohen's kappa, per class and per labeler) and what they agreed on.
- `neighbours`: nearest examples by embedding (cosine), computed in blocks.
"""

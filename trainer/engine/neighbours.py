"""Nearest examples by embedding: cosine similarity, computed in blocks so memory stays bounded."""

import numpy as np

BLOCK = 2048  # query rows per block at most; fewer when n is large, so a block holds about 64 MB of similarities


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32."""
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be a table of n examples by d dimensions, got shape {e.shape}")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(norms, 1e-12)


def nearest(embeddings: np.ndarray, queries: np.ndarray, k: int = 5, *, unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each query index, the k other examples most similar to it: (indices (q, k), cosine similarities (q, k)).

    A query never lists itself. unit=True: the embeddings are already normalized.
    """
    e = embeddings if unit else normalize(embeddings)
    queries = np.asarray(queries, dtype=np.int64)
    n = e.shape[0]
    k = max(0, min(k, n - 1))
    out_idx = np.empty((len(queries), k), dtype=np.int64)
    out_sim = np.empty((len(queries), k), dtype=np.float32)
    block = max(1, min(BLOCK, (64 * 1024 * 1024) // max(1, 4 * n)))  # about 64 MB of similarities per block
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        sims = e[q] @ e.T  # (b, n)
        sims[np.arange(len(q)), q] = -np.inf  # not itself
        if k == 0:
            continue
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.argsort(-sims, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        out_idx[start : start + len(q)] = np.take_along_axis(top, order, axis=1)
        out_sim[start : start + len(q)] = np.take_along_axis(top_sims, order, axis=1)
    return out_idx, out_sim

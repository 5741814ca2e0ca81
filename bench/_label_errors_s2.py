"""The label-error benchmark's s2-only measurements (bench/label_errors.py).

- `pipeline`: s2's own path from noisy labels to the label-error queue, as a worker runs it after a
  run's model is trained: `trainer.crossfit.cross_fit` (K fold models of the default digits CNN spec,
  trained through `train` itself) and `analyze` (the run's model over every example), feeding
  `trainer.engine.label_errors.find_label_issues`.
- `store_refresh`: `server.engine.service.record_analysis` on a real store (a private PostgreSQL
  database, or SQLite under a temporary S2_HOME): the analysis written as one Parquet blob, both
  queues ranked and their rows written, in one transaction, for N examples of a synthetic model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

PG = os.environ.get("S2_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
LABELS = [str(d) for d in range(10)]


def pipeline(labels: np.ndarray, folds: int = 5) -> dict:
    """s2's queue over digits labeled `labels` (the 1,797 in load_digits order): ranking and each step's seconds."""
    from tests.trainer.factories import digits
    from trainer.crossfit import analyze, cross_fit
    from trainer.engine.label_errors import find_label_issues
    from trainer.train import train

    logging.disable(logging.INFO)  # the trainer's per-epoch lines
    snap = replace(digits(), targets=[int(t) for t in labels])
    t = time.perf_counter()
    model = train(snap, None)  # the run's own model: the default spec (the CNN for images)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    fit = cross_fit(snap, None, folds=folds)
    crossfit_s = time.perf_counter() - t
    t = time.perf_counter()
    seen = analyze(model.weights, snap)
    analyze_s = time.perf_counter() - t
    row = {k: i for i, k in enumerate(snap.keys)}
    rows = np.array([row[k] for k in fit.keys])
    t = time.perf_counter()
    queue = find_label_issues(labels[rows], fit.probabilities)
    rank_s = time.perf_counter() - t
    logging.disable(logging.NOTSET)
    assert seen.probabilities.shape == (len(snap.keys), len(LABELS))
    ranked = np.array([rows[i.index] for i in queue], dtype=np.int64)
    return {"ranked": ranked, "train_s": train_s, "crossfit_s": crossfit_s, "analyze_s": analyze_s, "rank_s": rank_s}


@contextmanager
def _store(backend: str):
    """A private, migrated store for this process: (S2_HOME, database URL); PostgreSQL's database is dropped after."""
    from sqlalchemy import create_engine, text

    from server.config import get_settings
    from server.db import get_engine, get_read_engine

    with tempfile.TemporaryDirectory(prefix="s2-bench-") as home:
        name = f"s2b_{uuid.uuid4().hex[:12]}"
        url = f"{PG}/{name}" if backend == "postgres" else f"sqlite:///{Path(home) / 's2.db'}"
        admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT") if backend == "postgres" else None
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        saved = {k: os.environ.get(k) for k in ("S2_HOME", "S2_DATABASE_URL")}
        os.environ.update({"S2_HOME": home, "S2_DATABASE_URL": url})
        get_settings.cache_clear()
        get_engine.cache_clear()
        try:
            yield home, url
        finally:
            get_engine(url).dispose()
            get_engine.cache_clear()
            get_read_engine.cache_clear()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            get_settings.cache_clear()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def _model_row(db) -> int:  # noqa: ANN001
    """A dataset `bench` and a model version of it (bench@1) whose analysis has started; its id."""
    from server.datasets.datasets import create_dataset, get_dataset
    from server.engine.service import start_analysis
    from server.runs.models import ModelVersion, TrainingRun

    create_dataset(db, name="bench", modality="image", labels=LABELS, author="bench")
    ds = get_dataset(db, "bench")
    commit = "0" * 64
    run = TrainingRun(dataset_id=ds.id, commit_id=commit, covers=[commit], spec={}, spec_hash="0" * 64, queue="default", state="succeeded")
    db.add(run)
    db.flush()
    model = ModelVersion(
        dataset_id=ds.id,
        version=1,
        run_id=run.id,
        commit_id=commit,
        spec={},
        spec_hash="0" * 64,
        template="cnn_small",
        code_version="bench",
        weights_blob="0" * 64,
        predictions_blob="0" * 64,
        metrics={},
        curves={},
        device="cpu",
        duration_s=0.0,
    )
    db.add(model)
    db.flush()
    start_analysis(db, model.id, 5)
    return model.id


def synthetic(n: int, unlabeled: float = 0.2, seed: int = 0, k: int = 10, d: int = 64):
    """A snapshot of n examples (a share unlabeled), a model's out-of-sample probabilities of the labeled ones
    and its probabilities and embeddings of all: (snapshot, CrossFit, Analysis)."""
    from trainer.crossfit import Analysis, CrossFit
    from trainer.data import TrainingSnapshot

    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (n, k))
    truth = rng.integers(0, k, n)
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits)
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    targets = np.where(rng.random(n) < unlabeled, -1, truth)
    keys = [f"ex{i:09d}" for i in range(n)]
    snapshot = TrainingSnapshot(
        dataset="bench",
        commit="0" * 64,
        modality="image",
        labels=tuple(LABELS),
        keys=keys,
        inputs=[hashlib.sha256(key.encode()).hexdigest() for key in keys],
        targets=targets.tolist(),
        splits=[None] * n,
        read_input=lambda _: b"",
    )
    labeled = np.flatnonzero(targets >= 0)
    fit = CrossFit([keys[i] for i in labeled], probs[labeled], 5, 0.0)
    seen = Analysis(keys, probs, rng.normal(0, 1, (n, d)).astype(np.float32), 0.0)
    return snapshot, fit, seen


def store_refresh(n: int, backend: str = "postgres") -> dict:
    """record_analysis of a synthetic model's analysis of n examples on a private store: seconds and what it wrote."""
    import pyarrow as pa

    from server.blobs import default_blob_store
    from server.db import session_scope
    from server.engine.service import _table, record_analysis

    snapshot, fit, seen = synthetic(n)
    # A worker that has analysed a model before: pyarrow's Parquet writer imports pandas on first use (about 1.3 s
    # here, once per process), and the engine's modules are loaded.
    _table(["k"], [None], pa.array([None], type=pa.list_(pa.float32())), None, None)
    with _store(backend):
        blobs = default_blob_store()
        with session_scope() as db:
            model_id = _model_row(db)
        t = time.perf_counter()
        with session_scope() as db:  # the worker's unit of work: committed when it returns
            counts = record_analysis(db, blobs, model_id, snapshot, fit, seen)
        total_s = time.perf_counter() - t
        # The Parquet blob alone, for the breakdown: the same table encoded again and written again (deleted first).
        t = time.perf_counter()
        oos = dict(zip(fit.keys, fit.probabilities))
        column = pa.array([None if (p := oos.get(k)) is None else p.tolist() for k in snapshot.keys], type=pa.list_(pa.float32()))
        given = [LABELS[t] if t >= 0 else None for t in snapshot.targets]
        data = _table(seen.keys, given, column, seen.probabilities, seen.embeddings)
        encode_s = time.perf_counter() - t
        blobs.delete(blobs.put(data))
        t = time.perf_counter()
        blobs.put(data)
        put_s = time.perf_counter() - t
    return {
        "n": n,
        "labeled": len(fit.keys),
        "backend": backend,
        "total_s": total_s,
        "encode_s": encode_s,
        "put_s": put_s,
        "blob_mb": len(data) / 2**20,
        "rows": {q: counts.get(q, 0) for q in ("label-errors", "uncertain")},
    }

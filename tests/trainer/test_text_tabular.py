"""Real training on generated topic sentences and on sklearn's wine table."""

import io

import numpy as np
import pyarrow.parquet as pq
import torch
from sklearn.datasets import load_wine

from tests.trainer.factories import topics, wine
from trainer.data import split_indices
from trainer.train import load_model, train

TEXT = {"epochs": 5, "batch_size": 32, "learning_rate": 1e-2, "text_buckets": 4096}


def test_ngram_bag_learns_topics():
    result = train(topics(), TEXT)
    assert result.spec["template"] == "ngram_bag"
    assert result.metrics["eval"]["accuracy"] > 0.9


def test_transformer_small_beats_chance():
    result = train(topics(), {**TEXT, "template": "transformer_small", "epochs": 3, "learning_rate": 3e-3, "embed_dim": 32})
    assert result.metrics["eval"]["accuracy"] > 0.5  # three classes: chance is 1/3


def test_mlp_learns_wine_and_keeps_its_standardisation():
    snapshot = wine()
    result = train(snapshot, {"epochs": 30, "batch_size": 16, "learning_rate": 3e-3})
    assert result.spec["template"] == "mlp"
    assert result.metrics["eval"]["accuracy"] > 0.85
    net, _, _ = load_model(result.weights)
    train_rows = split_indices(snapshot, 0.2)["train"]
    data = load_wine()
    order = np.argsort(data.feature_names)  # features are stored in sorted-name order
    expected = data.data[train_rows][:, order].mean(0)
    np.testing.assert_allclose(net.feature_mean.numpy(), expected, rtol=1e-5)
    assert torch.all(net.feature_std > 0)


def test_explicit_split_column_wins_over_the_key_hash():
    chosen = {i: "validation" for i in range(0, 178, 4)} | {i: "train" for i in range(1, 178, 4)}
    snapshot = wine(splits=chosen)
    result = train(snapshot, {"epochs": 2, "batch_size": 32})
    scored = {r["key"] for r in pq.read_table(io.BytesIO(result.predictions)).to_pylist() if r["eval_set"] == "eval"}
    explicit_eval = {f"w{i:03d}" for i, s in chosen.items() if s == "validation"}
    assert explicit_eval <= scored
    assert not scored & {f"w{i:03d}" for i, s in chosen.items() if s == "train"}


def test_unlabeled_examples_get_guesses_but_no_metrics():
    """The labeling workbench pre-selects the model's guess: unlabeled examples are scored as set `unlabeled`."""
    from tests.trainer.factories import make_snapshot, topic_texts

    items = topic_texts(400)
    hidden = {k: t for k, _, t, _ in items[:40]}
    snapshot = make_snapshot("text", list(topics().labels), [(k, d, -1 if k in hidden else t, s) for k, d, t, s in items])
    result = train(snapshot, TEXT)
    assert set(result.metrics) == {"eval"}
    table = pq.read_table(io.BytesIO(result.predictions)).to_pylist()
    guessed = {r["key"]: r for r in table if r["eval_set"] == "unlabeled"}
    assert set(guessed) == set(hidden)
    assert all(r["label"] is None and abs(sum(r["probabilities"]) - 1) < 1e-4 for r in guessed.values())
    right = sum(list(topics().labels).index(r["predicted"]) == hidden[k] for k, r in guessed.items())
    assert right / len(hidden) > 0.8  # the guesses are worth pre-selecting

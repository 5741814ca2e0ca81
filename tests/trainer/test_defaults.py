"""The compiler's defaults (issue 12, part 2): a spec that sets nothing gives a good model on each modality.

Margins come from measured runs on a 1-thread CPU (bench/defaults.py) with room for noise: digits 0.995
(majority 0.12), docstrings 0.90 (majority 0.23, TF-IDF + logistic regression 0.905), wine 1.00 (majority
0.40), breast_cancer 0.956 (majority 0.56). The old defaults (constant 1e-3, 10 epochs) reached 0.53 on
the docstrings: a collapse toward the majority class.
"""

from collections import Counter

import numpy as np
import pytest

from tests.trainer.datasets import breast_cancer, docstrings
from tests.trainer.factories import digits, png, topics, wine
from trainer.data import split_indices
from trainer.defaults import fit_to_data
from trainer.spec import resolve_spec
from trainer.train import load_model, train


def majority(snapshot) -> float:
    """Eval accuracy of always predicting the eval side's most common class."""
    counts = Counter(snapshot.targets[r] for r in split_indices(snapshot, 0.2)["eval"])
    return max(counts.values()) / sum(counts.values())


def test_default_spec_learns_digits():
    snapshot = digits()
    result = train(snapshot, None)
    assert result.spec["image_size"] == 8 and result.spec["image_channels"] == 1  # sized from the 8x8 grayscale PNGs
    assert result.metrics["eval"]["accuracy"] > 0.93 > majority(snapshot) + 0.7


def test_default_spec_learns_docstrings_near_tfidf_logistic_regression():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    snapshot = docstrings()
    assert len(set(snapshot.targets)) >= 8
    sides = split_indices(snapshot, 0.2)
    texts = [snapshot.read_input(i).decode() for i in snapshot.inputs]
    baseline = make_pipeline(TfidfVectorizer(sublinear_tf=True), LogisticRegression(C=10, max_iter=2000))
    baseline.fit([texts[r] for r in sides["train"]], [snapshot.targets[r] for r in sides["train"]])
    predicted = baseline.predict([texts[r] for r in sides["eval"]])
    baseline_accuracy = float(np.mean(predicted == np.array([snapshot.targets[r] for r in sides["eval"]])))

    result = train(snapshot, None)
    accuracy = result.metrics["eval"]["accuracy"]
    assert accuracy > majority(snapshot) + 0.45  # 0.90 measured against a 0.23 majority class
    assert accuracy > baseline_accuracy - 0.06  # measured: 0.901 against 0.905
    assert min(c["recall"] for c in result.metrics["eval"]["per_class"].values()) > 0.3  # no class left out


@pytest.mark.parametrize("make, floor", [(wine, 0.9), (breast_cancer, 0.9)])
def test_default_spec_learns_bundled_tables(make, floor):
    snapshot = make()
    result = train(snapshot, None)
    assert result.metrics["eval"]["accuracy"] > floor
    assert result.metrics["eval"]["accuracy"] > majority(snapshot) + 0.3


def test_resolve_leaves_data_sized_knobs_for_train_and_train_records_them():
    resolved = resolve_spec(None, "text")
    assert resolved.learning_rate == 1e-2 and resolved.lr_schedule == "cosine"
    assert resolved.epochs is resolved.max_len is resolved.text_buckets is resolved.batch_size is None
    snapshot = topics(300)
    result = train(snapshot, None)
    assert result.spec_hash == resolved.spec_hash()  # the run's hash: the request, sized the same way every time
    assert all(v is not None for k, v in result.spec.items() if k != "max_time_s")
    net, spec, _ = load_model(result.weights)  # the weights carry the sized spec: predict rebuilds the same model
    assert spec.model_dump(mode="json") == result.spec and spec.text_buckets == net.embed.num_embeddings


def test_explicit_values_are_kept():
    snapshot = topics(300)
    train_rows = split_indices(snapshot, 0.2)["train"]
    explicit = {
        "epochs": 3,
        "batch_size": 8,
        "learning_rate": 0.5,
        "lr_schedule": "constant",
        "text_buckets": 999,
        "max_len": 7,
        "embed_dim": 12,
    }
    sized = fit_to_data(explicit, snapshot, train_rows)
    assert sized.model_dump(include=set(explicit)) == explicit
    assert sized.early_stopping_patience == 0  # epochs the user set are run in full
    auto = fit_to_data(None, snapshot, train_rows)
    assert auto.early_stopping_patience > 0 and auto.epochs >= 10
    assert fit_to_data(auto, snapshot, train_rows) == auto  # a sized spec is a fixed point
    result = train(snapshot, {**explicit, "text_buckets": 4096})
    assert result.epochs_run == 3 and result.spec["max_len"] == 7


def test_sizes_follow_the_data():
    from tests.trainer.factories import make_snapshot

    long_texts = [(f"k{i}", " ".join(f"w{j % 50}" for j in range(100 + i % 20)).encode(), i % 2, None) for i in range(200)]
    spec = fit_to_data(None, make_snapshot("text", ["a", "b"], long_texts), list(range(200)))
    assert spec.max_len == 128 and spec.batch_size == 16 and spec.epochs == 24  # ceil(300 steps / 13 per epoch)
    rgb = [(f"i{i}", png(np.full((20, 24, 3), i, np.uint8)), i % 2, None) for i in range(10)]
    spec = fit_to_data(None, make_snapshot("image", ["a", "b"], rgb), list(range(10)))
    assert spec.image_size == 24 and spec.image_channels == 3
    many_classes = [(f"k{i}", f"word{i % 40} text".encode(), i % 40, None) for i in range(400)]
    assert fit_to_data(None, make_snapshot("text", [str(i) for i in range(40)], many_classes), list(range(400))).embed_dim == 256

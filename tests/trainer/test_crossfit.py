"""Cross-fitting and the model's view of every example: what the data engine's queues are ranked from."""

from dataclasses import replace

import numpy as np
import pytest

from tests.trainer.factories import digits
from trainer.crossfit import analyze, cross_fit, fold_of
from trainer.engine.label_errors import find_label_issues
from trainer.train import train


def test_label_error_queue_of_noisy_digits_holds_the_injected_errors():
    """Digits with 10% of labels flipped (seeded): the queue's top 100 holds at least 60 of them, suggesting the true label."""
    snap = digits()
    truth = np.array(snap.targets)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(truth), size=len(truth) // 10, replace=False)
    noisy = truth.copy()
    noisy[flipped] = (truth[flipped] + rng.integers(1, 10, size=len(flipped))) % 10
    snap = replace(snap, targets=noisy.tolist())
    done = []
    fit = cross_fit(snap, None, folds=5, progress=lambda f, k: done.append((f, k)))
    assert done == [(f, 5) for f in range(1, 6)] and fit.folds == 5 and fit.seconds > 0
    assert fit.keys == snap.keys and fit.probabilities.shape == (len(snap.keys), 10)
    assert np.allclose(fit.probabilities.sum(axis=1), 1, atol=1e-4)
    queue = find_label_issues(noisy, fit.probabilities)
    hits = [issue for issue in queue[:100] if issue.index in set(flipped.tolist())]
    assert len(hits) >= 60, f"{len(hits)} of the top 100 are injected errors"
    assert sum(issue.suggested == truth[issue.index] for issue in hits) >= 0.9 * len(hits)


def test_folds_are_stable_and_every_labeled_example_is_scored_once():
    keys = [f"k{i}" for i in range(1000)]
    folds = [fold_of(k, 5) for k in keys]
    assert folds == [fold_of(k, 5) for k in keys] and set(folds) == set(range(5))
    assert min(np.bincount(folds)) > 150  # about a fifth each
    snap = digits(60)
    snap = replace(snap, targets=[-1 if i % 6 == 0 else t for i, t in enumerate(snap.targets)])  # unlabeled rows get no fold
    fit = cross_fit(snap, {"template": "cnn_small", "epochs": 1}, folds=2)
    assert fit.keys == [k for k, t in zip(snap.keys, snap.targets) if t >= 0]


def test_too_few_examples_for_the_folds_is_refused():
    with pytest.raises(ValueError, match="too few for 5-fold"):
        cross_fit(digits(6), None, folds=5)
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fit(digits(60), None, folds=1)


def test_analysis_gives_probabilities_and_embeddings_for_every_example():
    snap = digits(120)
    snap = replace(snap, targets=[-1 if i >= 100 else t for i, t in enumerate(snap.targets)])
    model = train(snap, {"template": "cnn_small", "epochs": 1})
    seen = analyze(model.weights, snap)
    assert seen.keys == snap.keys and seen.probabilities.shape == (120, 10)
    assert seen.embeddings.shape[0] == 120 and seen.embeddings.shape[1] > 1
    assert np.allclose(seen.probabilities.sum(axis=1), 1, atol=1e-4)
    assert np.linalg.norm(seen.embeddings[0] - seen.embeddings[1]) > 0  # different digits, different embeddings

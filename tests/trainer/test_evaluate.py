"""The metrics agree with scikit-learn's; the light modules stay free of torch."""

import subprocess
import sys

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from trainer.evaluate import classification_metrics


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # label "d" is never predicted
    labels = ["a", "b", "c", "d"]
    m = classification_metrics(y_true, y_pred, rng.random(300), labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    assert m["accuracy"] == float((y_true == y_pred).mean()) and m["count"] == 300
    assert abs(m["macro_f1"] - f1_score(y_true, y_pred, average="macro")) < 1e-12
    for i, label in enumerate(labels):
        got = m["per_class"][label]
        assert np.allclose([got["precision"], got["recall"], got["f1"]], [p[i], r[i], f[i]]) and got["support"] == s[i]


def test_spec_data_and_result_import_without_torch():
    code = "import sys, trainer.spec, trainer.data, trainer.result, trainer.templates; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""Real training on sklearn's digits: cnn_small and resnet_small, metrics, predictions, predict()."""

import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.trainer.factories import digit_items, digits, make_snapshot
from trainer.result import PREDICTION_COLUMNS
from trainer.train import load_model, predict, train

SPEC = {"template": "cnn_small", "epochs": 5, "image_size": 16, "image_channels": 1, "batch_size": 32, "learning_rate": 3e-3}


def golden_set():
    """200 digits under other keys, with the label list in reverse order: scored by label name, not index."""
    labels = [str(i) for i in range(9, -1, -1)]
    items = [(f"g{k}", data, 9 - t, None) for k, data, t, _ in digit_items()[:200]]
    return make_snapshot("image", labels, items, dataset="golden")


@pytest.fixture(scope="module")
def run():
    events = []
    result = train(digits(), SPEC, eval_sets={"golden": golden_set()}, progress=events.append)
    return result, events


def test_cnn_small_learns_digits(run):
    result, _ = run
    m = result.metrics["eval"]
    assert m["accuracy"] > 0.9 and m["macro_f1"] > 0.9
    assert set(m["per_class"]) == {str(i) for i in range(10)}
    assert np.array(m["confusion_matrix"]).shape == (10, 10)
    assert np.array(m["confusion_matrix"]).sum() == m["count"] == sum(c["support"] for c in m["per_class"].values())
    assert result.epochs_run == 5 and result.device == "cpu"
    assert all(len(result.curves[c]) == 5 for c in ("train/loss", "eval/loss", "eval/accuracy"))
    assert result.curves["train/loss"][-1] < result.curves["train/loss"][0]
    # the last epoch's validation saw the final weights: its curves points are the eval set's scores exactly
    assert result.curves["eval/accuracy"][-1] == pytest.approx(m["accuracy"])
    assert result.curves["eval/loss"][-1] == pytest.approx(m["loss"], rel=1e-5)
    assert result.spec["template"] == "cnn_small" and len(result.spec_hash) == 64


def test_pinned_eval_set_is_scored_under_its_name(run):
    golden = run[0].metrics["golden"]
    assert golden["count"] == 200 and golden["accuracy"] > 0.9
    assert golden["per_class"]["0"]["support"] == sum(1 for _, _, t, _ in digit_items()[:200] if t == 0)


def test_progress_reports_increasing_steps_and_an_eta(run):
    _, events = run
    assert len(events) >= 10
    steps = [e["step"] for e in events]
    assert steps == sorted(steps) and steps[-1] == events[-1]["total_steps"] > 0
    assert all({"epoch", "epochs", "step", "total_steps", "loss", "eta_s"} <= e.keys() for e in events)
    assert events[-1]["epoch"] == 5 and events[-1]["eta_s"] == 0.0
    assert all(e["eta_s"] is not None and e["eta_s"] >= 0 for e in events if e["step"] > 0)


def test_predictions_parquet_has_every_scored_example(run):
    result, _ = run
    table = pq.read_table(io.BytesIO(result.predictions))
    assert tuple(table.column_names) == PREDICTION_COLUMNS
    rows = table.to_pylist()
    assert sum(r["eval_set"] == "eval" for r in rows) == result.metrics["eval"]["count"]
    assert sum(r["eval_set"] == "golden" for r in rows) == 200
    first = rows[0]
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4
    assert first["predicted"] == str(int(np.argmax(first["probabilities"]))) and first["loss"] >= 0


def test_predict_after_load_model_reproduces_eval_predictions(run):
    result, _ = run
    net, spec, labels = load_model(result.weights)
    assert spec.template == "cnn_small" and labels == [str(i) for i in range(10)] and not net.training
    scored = {r["key"]: r for r in pq.read_table(io.BytesIO(result.predictions)).to_pylist() if r["eval_set"] == "eval"}
    predicted = {key: (index, probs) for key, index, probs in predict(result.weights, digits())}
    assert len(predicted) == len(digit_items())  # every example, not only the scored ones
    for key, row in scored.items():
        index, probs = predicted[key]
        assert labels[index] == row["predicted"]
        np.testing.assert_allclose(probs, row["probabilities"], atol=1e-5)


def test_resnet_small_trains():
    result = train(digits(), {**SPEC, "template": "resnet_small", "epochs": 2})
    assert result.metrics["eval"]["accuracy"] > 0.5
    assert result.epochs_run == 2

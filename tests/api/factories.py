"""Build API test data that would otherwise need a worker: model versions registered without training."""

import io

import pyarrow as pa
import pyarrow.parquet as pq

from server.blobs import BlobStore


def eval_metrics(labels: list[str], truth: dict[str, str], predicted: dict[str, str]) -> dict:
    """The trainer's metrics of one eval set (accuracy, macro_f1, loss, per_class, confusion_matrix, count)."""
    index = {label: i for i, label in enumerate(labels)}
    cm = [[0] * len(labels) for _ in labels]
    for key, label in truth.items():
        cm[index[label]][index[predicted[key]]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        tp, support, said = cm[i][i], sum(cm[i]), sum(row[i] for row in cm)
        precision, recall = tp / said if said else 0.0, tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    accuracy = sum(cm[i][i] for i in range(len(labels))) / len(truth)
    return {
        "accuracy": accuracy,
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(labels),
        "loss": round(1.0 - accuracy, 6),
        "per_class": per_class,
        "confusion_matrix": cm,
        "count": len(truth),
    }


def register_model(
    blobs: BlobStore,
    run_id: int,
    labels: list[str],
    truth: dict[str, str],
    predicted: dict[str, str],
    probabilities: dict[str, list[float]] | None = None,
) -> str:
    """Finish run run_id as a worker would, with a model that predicted `predicted` on eval set `eval`; returns its ref.

    probabilities: per key, in label order (default: certainty, [1.0]).
    """
    from server.registry.service import register_model as register
    from trainer.result import TrainResult

    keys = sorted(truth)
    table = pa.table(
        {
            "eval_set": ["eval"] * len(keys),
            "key": keys,
            "label": [truth[k] for k in keys],
            "predicted": [predicted[k] for k in keys],
            "probabilities": [(probabilities or {}).get(k, [1.0]) for k in keys],
            "loss": [0.0 for _ in keys],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    metrics = eval_metrics(labels, truth, predicted)
    result = TrainResult(
        weights=f"weights of run {run_id}".encode(),
        spec={"template": "fake", "epochs": 1},
        spec_hash=f"{run_id:064x}",
        metrics={"eval": metrics},
        curves={"eval/accuracy": [metrics["accuracy"]]},
        predictions=buf.getvalue(),
        device="cpu",
        epochs_run=1,
        duration_s=0.01,
        labels=labels,
    )
    return register(run_id, result, blobs)


def finished(c, response) -> dict:
    """Follow an import's answer (202, the job) until the job ends; returns the finished job."""
    import time

    assert response.status_code == 202, f"{response.status_code} {response.text}"
    assert response.headers["location"] == f"/api/v1/imports/{response.json()['id']}"
    job, deadline = response.json(), time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"import job still {job['state']} after 120 s: {job}"
        time.sleep(0.05)
        job = c.get(f"/imports/{job['id']}").json()
    return job


def imported(c, response) -> dict:
    """The finished job of an import that must succeed."""
    job = finished(c, response)
    assert job["state"] == "succeeded", job
    return job

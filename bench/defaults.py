"""The compiler's defaults against scikit-learn baselines, on the same train/eval split (issue 12, part 2).

Datasets: scikit-learn's digits (8x8 PNGs, image), docstrings of packages installed here labeled by package
(text, 10 imbalanced classes), scikit-learn's breast_cancer (tabular). For each: the default spec's eval
accuracy and wall time (train() end to end, scoring included) next to the baselines' (fit + predict on
features extracted once). Goal: within 2 accuracy points of the best baseline and within 3x its time.

    .venv/bin/python bench/defaults.py [--threads 1] [--only digits,text,tabular] [--spec '{"epochs": 5}']
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tests.trainer.datasets import breast_cancer, docstrings  # noqa: E402
from tests.trainer.factories import digits  # noqa: E402
from trainer.data import split_indices  # noqa: E402
from trainer.train import train  # noqa: E402

ACCURACY_GOAL, TIME_GOAL = 0.02, 3.0


def _image_features(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"), dtype=np.float64).ravel() / 255.0


def _tabular_features(data: bytes) -> np.ndarray:
    row = json.loads(data)
    return np.array([row[k] for k in sorted(row)], dtype=np.float64)


def baselines(kind: str, snapshot) -> dict[str, tuple[float, float]]:
    """name -> (eval accuracy, seconds for fit + predict) on the trainer's own split."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    sides = split_indices(snapshot, 0.2)
    raw = {side: [snapshot.read_input(snapshot.inputs[r]) for r in rows] for side, rows in sides.items()}
    y = {side: np.array([snapshot.targets[r] for r in rows]) for side, rows in sides.items()}
    if kind == "text":
        x = {side: [b.decode() for b in rows] for side, rows in raw.items()}
        models = {"tfidf+logreg": make_pipeline(TfidfVectorizer(sublinear_tf=True), LogisticRegression(C=10, max_iter=2000))}
    elif kind == "image":
        x = {side: np.stack([_image_features(b) for b in rows]) for side, rows in raw.items()}
        models = {"svc": SVC(), "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))}
    else:
        x = {side: np.stack([_tabular_features(b) for b in rows]) for side, rows in raw.items()}
        models = {"hist_gbdt": HistGradientBoostingClassifier(random_state=0)}
    out = {}
    for name, model in models.items():
        t = time.perf_counter()
        accuracy = float((model.fit(x["train"], y["train"]).predict(x["eval"]) == y["eval"]).mean())
        out[name] = (accuracy, time.perf_counter() - t)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="digits,text,tabular")
    parser.add_argument("--spec", default=None, help="a spec (JSON) to run instead of the defaults")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    spec = json.loads(args.spec) if args.spec else None
    datasets = {"digits": ("image", digits), "text": ("text", docstrings), "tabular": ("tabular", breast_cancer)}
    failed = 0
    print(f"{'dataset':<9} {'model':<14} {'accuracy':>8} {'time_s':>7}  notes")
    for name in args.only.split(","):
        kind, make = datasets[name]
        snapshot = make()
        sides = split_indices(snapshot, 0.2)
        counts = np.bincount([snapshot.targets[r] for r in sides["eval"]])
        base = baselines(kind, snapshot)
        t = time.perf_counter()
        result = train(snapshot, spec)
        seconds = time.perf_counter() - t
        accuracy = result.metrics["eval"]["accuracy"]
        best_name, (best_acc, best_s) = max(base.items(), key=lambda kv: kv[1][0])
        ok_acc, ok_time = accuracy >= best_acc - ACCURACY_GOAL, seconds <= TIME_GOAL * max(best_s, 1e-9)
        failed += not (ok_acc and ok_time)
        print(
            f"{name:<9} {'majority':<14} {counts.max() / counts.sum():>8.3f} {'':>7}  {len(sides['train'])} train / {len(sides['eval'])} eval rows"
        )
        for bname, (bacc, bs) in base.items():
            print(f"{'':<9} {bname:<14} {bacc:>8.3f} {bs:>7.2f}")
        print(
            f"{'':<9} {'s2 ' + result.spec['template']:<14} {accuracy:>8.3f} {seconds:>7.2f}  {result.epochs_run} epochs; "
            f"accuracy {'ok' if ok_acc else 'MISSED'} ({accuracy - best_acc:+.3f} vs {best_name}), "
            f"time {'ok' if ok_time else 'MISSED'} ({seconds / max(best_s, 1e-9):.1f}x)",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Incremental compile: a 1% relabel commit warm-started from its parent commit's model, against the same commit
trained from scratch.

Two stories of one commit that changes 1% of the labels (seeded, spread at random over the dataset):
  * relabel: the parent commit is the dataset as shipped; the commit moves 1% of its labels to another class;
  * fix: the parent commit has those 1% wrong (its model learned from them); the commit puts them right.
The parent's model is trained with the default spec. The commit is then trained with the default spec from
scratch, and warm-started from the parent's model (`warm_start: true`: the fine-tune schedule of
trainer/defaults.py), once per seed. Timed (train() end to end: fit, scoring, weights; one CPU thread): the
scratch run, the warm run, and the warm run until the end of its first epoch whose eval accuracy reaches the
scratch model's of the same seed (the progress reports carry each epoch's eval accuracy). Goal: the warm run
reaches the scratch model's accuracy at least 3x sooner than the scratch run ends (median over seeds; a seed
whose warm run never reaches it counts as 0x). Data: scikit-learn's digits (image) and the docstrings of
bench/defaults.py (text, 10 classes).

    .venv/bin/python bench/incremental.py [--threads 1] [--only digits,text] [--fraction 0.01] [--seeds 3]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tests.trainer.datasets import docstrings  # noqa: E402
from tests.trainer.factories import digits  # noqa: E402
from trainer.train import train  # noqa: E402

SPEEDUP_GOAL = 3.0


def one_percent(snapshot, fraction: float, seed: int = 0):
    """(snapshot with `fraction` of its labels moved to another class, how many moved)."""
    rng = random.Random(seed)
    rows = rng.sample(range(len(snapshot.keys)), max(1, round(fraction * len(snapshot.keys))))
    targets = list(snapshot.targets)
    for r in rows:
        targets[r] = rng.choice([t for t in range(len(snapshot.labels)) if t != targets[r]])
    return replace(snapshot, targets=targets, commit="1" * 40), len(rows)


def timed_train(snapshot, spec, init_from=None) -> tuple[object, float, list[tuple[float, float]]]:
    """(result, seconds end to end, [(seconds since the call, eval accuracy) at each epoch's end])."""
    marks: list[tuple[float, float]] = []
    t0 = time.perf_counter()

    def progress(info: dict) -> None:
        if info.get("eval_accuracy") is not None:
            marks.append((time.perf_counter() - t0, info["eval_accuracy"]))

    result = train(snapshot, spec, progress=progress, init_from=init_from)
    return result, time.perf_counter() - t0, marks


def measure(parent_snapshot, commit, seeds: int) -> dict:
    """The parent's model, then per seed: the commit from scratch and warm-started from that model."""
    parent = train(parent_snapshot, None)
    per_seed = []
    for seed in range(seeds):
        scratch, scratch_s, _ = timed_train(commit, {"seed": seed})
        target = scratch.metrics["eval"]["accuracy"]
        warm, warm_s, marks = timed_train(commit, {"seed": seed, "warm_start": True}, init_from=parent.weights)
        reach = next((t for t, accuracy in marks if accuracy >= target - 1e-9), None)
        per_seed.append(
            {
                "scratch_acc": target,
                "scratch_s": scratch_s,
                "scratch_epochs": scratch.epochs_run,
                "warm_acc": warm.metrics["eval"]["accuracy"],
                "warm_s": warm_s,
                "warm_epochs": warm.epochs_run,
                "reach_s": reach,
                "speedup": scratch_s / reach if reach else 0.0,
            }
        )
    median = {k: statistics.median(s[k] for s in per_seed) for k in per_seed[0] if k != "reach_s"}
    reached = [s["reach_s"] for s in per_seed if s["reach_s"] is not None]
    return {
        **median,
        "parent_acc": parent.metrics["eval"]["accuracy"],
        "reach_s": statistics.median(reached) if reached else None,
        "reached": len(reached),
        "seeds": seeds,
        "warm_spec": warm.spec,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="digits,text")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of the labels the commit changes")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per story (medians are shown)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    datasets = {"digits": digits, "text": docstrings}
    failed = 0
    print(
        f"{'data':<7} {'story':<8} {'labels':>6} {'parent':>6} {'scratch':>7} {'s':>5} {'warm':>6} {'s':>5} "
        f"{'reach s':>7} {'speedup':>7}  result"
    )
    for name in args.only.split(","):
        shipped = datasets[name]()
        changed, n = one_percent(shipped, args.fraction)
        for story, (before, after) in (("relabel", (shipped, changed)), ("fix", (changed, shipped))):
            m = measure(before, after, args.seeds)
            ok = m["speedup"] >= SPEEDUP_GOAL
            failed += not ok
            spec = m["warm_spec"]
            reach = f"{m['reach_s']:.2f}" if m["reach_s"] is not None else "never"
            print(
                f"{name:<7} {story:<8} {n:>6} {m['parent_acc']:>6.3f} {m['scratch_acc']:>7.3f} {m['scratch_s']:>5.2f} "
                f"{m['warm_acc']:>6.3f} {m['warm_s']:>5.2f} {reach:>7} {m['speedup']:>6.1f}x  {'PASS' if ok else 'FAIL'} "
                f"(reached in {m['reached']}/{m['seeds']} seeds; scratch {m['scratch_epochs']:.0f} epochs, warm {m['warm_epochs']:.0f} "
                f"of {spec['epochs']} at peak lr {spec['learning_rate']:g}; end to end {m['scratch_s'] / m['warm_s']:.1f}x)",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

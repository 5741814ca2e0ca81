"""train(snapshot, spec) -> TrainResult: one Lightning fit, then scoring on the eval side and pinned sets."""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator
from lightning.pytorch.callbacks import EarlyStopping

from trainer.callbacks import CURVES, RestoreBest, RunMonitor
from trainer.data import TrainingSnapshot, split_indices
from trainer.datamodule import SnapshotDataModule
from trainer.defaults import fit_to_data
from trainer.evaluate import predictions_parquet, score_sets
from trainer.inference import load_model, predict, save_weights
from trainer.module import ClassifierModule
from trainer.result import Cancelled, TrainResult
from trainer.spec import TrainSpec, resolve_spec
from trainer.templates import build_model
from trainer.warm import inherit_architecture, load_parent_weights, read_parent, warm_start_problem

__all__ = ["Cancelled", "TrainResult", "check_trainable", "load_model", "predict", "train"]


def _gpu_count() -> int:
    # Lightning's count goes through NVML (it sets PYTORCH_NVML_BASED_CUDA_CHECK), so it does not initialise
    # CUDA in this process, which would forbid forking DDP workers later
    if CUDAAccelerator.is_available():
        return CUDAAccelerator.auto_device_count()
    return 1 if MPSAccelerator.is_available() else 0


def _on_gpu(spec: TrainSpec, gpus: int) -> bool:
    return spec.accelerator == "gpu" or (spec.accelerator == "auto" and gpus > 0)


def _device_count(spec: TrainSpec, gpus: int) -> int:
    """How many devices Lightning will use on this node, to choose the strategy."""
    on_gpu = _on_gpu(spec, gpus)
    if spec.devices == "auto":
        return gpus if on_gpu else 1
    text = str(spec.devices).strip()
    if text.lstrip("-").isdigit():
        return gpus if int(text) == -1 else int(text)
    return len([part for part in text.split(",") if part.strip()])  # "0,1": device indices


def _strategy(spec: TrainSpec, devices: int) -> str:
    """ddp across nodes (every node runs the same command, e.g. under torchrun or SLURM); ddp_fork on one node,
    because plain ddp re-executes sys.argv, which inside a Celery worker would start another worker."""
    if spec.strategy != "auto":
        return spec.strategy
    if spec.num_nodes > 1:
        return "ddp"
    return "ddp_fork" if devices > 1 else "auto"


def check_trainable(snapshot: TrainingSnapshot, spec: TrainSpec | dict | str | None) -> None:
    """Raise ValueError saying what to fix when this snapshot cannot be trained with this spec on this host."""
    spec = resolve_spec(spec, snapshot.modality)
    snapshot.check_shape()
    if not snapshot.keys:
        raise ValueError(f"{snapshot.name} has no examples; import data before training")
    classes = sorted({t for t in snapshot.targets if t >= 0})
    if len(classes) < 2:
        named = ", ".join(snapshot.labels[t] for t in classes) or "none"
        raise ValueError(f"{snapshot.name} has {len(classes)} labeled class(es) ({named}); label at least two classes")
    sides = split_indices(snapshot, spec.eval_fraction)
    for side, fix in (
        ("train", "mark some examples split=train or lower eval_fraction"),
        ("eval", "mark some examples split=eval or raise eval_fraction"),
    ):
        if not sides[side]:
            raise ValueError(f"{snapshot.name}: the {side} split has no labeled examples; {fix}")
    if len({snapshot.targets[i] for i in sides["train"]}) < 2:
        raise ValueError(f"{snapshot.name}: the train split holds one class only; label more or move some to train")
    gpus = _gpu_count()
    if spec.accelerator == "gpu" and not gpus:
        raise ValueError("accelerator='gpu' but this host has no GPU; use 'auto' or 'cpu', or run on a GPU worker")
    wanted = _device_count(spec, gpus)
    if _on_gpu(spec, gpus) and wanted > gpus:
        raise ValueError(f"devices={spec.devices!r} asks for {wanted} GPUs but this host has {gpus}")


def _pinned_targets(labels: tuple[str, ...], name: str, pinned: TrainingSnapshot, modality: str) -> tuple[list[int], list[int]]:
    """Rows and targets (in the training label order) of a pinned eval set's labeled examples."""
    if name == "eval":
        raise ValueError("pinned eval set name 'eval' is reserved for the dataset's own held-out split; rename it")
    if pinned.modality != modality:
        raise ValueError(f"pinned eval set {name!r} is {pinned.modality} data; the model reads {modality}")
    pinned.check_shape()
    index = {label: i for i, label in enumerate(labels)}
    rows = [r for r, t in enumerate(pinned.targets) if t >= 0]
    unknown = sorted({pinned.labels[pinned.targets[r]] for r in rows} - index.keys())
    if unknown:
        raise ValueError(f"pinned eval set {name!r} uses labels the training data lacks: {', '.join(unknown)}")
    return rows, [index[pinned.labels[pinned.targets[r]]] for r in rows]


def _trainer(spec: TrainSpec, callbacks: list[L.Callback]) -> L.Trainer:
    gpus = _gpu_count()
    devices = _device_count(spec, gpus)
    return L.Trainer(
        accelerator=spec.accelerator,
        devices=spec.devices,
        num_nodes=spec.num_nodes,
        strategy=_strategy(spec, devices),
        sync_batchnorm=_on_gpu(spec, gpus) and devices * spec.num_nodes > 1,  # SyncBatchNorm runs on GPUs only
        precision=spec.precision,
        max_epochs=spec.epochs,
        max_time=timedelta(seconds=spec.max_time_s) if spec.max_time_s else None,
        deterministic=True,
        callbacks=callbacks,
        num_sanity_val_steps=0,  # sanity steps cost time, prove little here
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _fit(
    spec: TrainSpec,
    module: ClassifierModule,
    dm: SnapshotDataModule,
    progress: Callable[[dict], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[L.Trainer, dict]:
    """Run trainer.fit; return the trainer and the monitor's record ({"curves", "epochs_run"})."""
    with tempfile.TemporaryDirectory(prefix="s2-train-") as tmp, warnings.catch_warnings():
        # num_workers=0 is a deliberate default (decoding is cheap next to these models); no need to say so per run
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning 2.6 on torch 2.13 internals, not ours
        state_path = Path(tmp) / "state.json"
        callbacks: list[L.Callback] = [RunMonitor(spec.epochs, state_path, spec.max_time_s, progress, should_stop)]
        if spec.early_stopping_patience:
            callbacks.append(EarlyStopping("eval/loss", patience=spec.early_stopping_patience, mode="min"))
            if spec.restore_best:
                callbacks.append(RestoreBest("eval/loss"))
        trainer = _trainer(spec, callbacks)
        try:
            trainer.fit(module, datamodule=dm)
        except Cancelled:
            raise
        except Exception as exc:  # forked ranks that raised Cancelled reach us as ProcessRaisedException
            if _read(state_path).get("cancelled") or (should_stop is not None and should_stop()):
                raise Cancelled("training cancelled") from exc
            raise
        return trainer, _read(state_path)


def _read(state_path: Path) -> dict:
    return json.loads(state_path.read_text()) if state_path.exists() else {}


def _device_name(trainer: L.Trainer) -> str:
    world = trainer.num_devices * trainer.num_nodes
    return str(trainer.strategy.root_device) + (f" x{world}" if world > 1 else "")


def train(
    snapshot: TrainingSnapshot,
    spec: TrainSpec | dict | str | None = None,
    *,
    eval_sets: dict[str, TrainingSnapshot] | None = None,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_from: bytes | None = None,
) -> TrainResult:
    """Train the spec's template on the snapshot's train side, score the eval side and each pinned set.

    Knobs the spec leaves unset are sized from the train side (trainer.defaults.fit_to_data); the result's
    spec is the sized one (what the weights were built with), its spec_hash the hash of the spec as
    resolved before sizing (the run's spec_hash: the same request on the same commit sizes the same way).
    init_from: a parent model's weights file to start from (a warm start: its architecture, a fine-tune's
    schedule); ValueError when trainer.warm.warm_start_problem finds it cannot start this training.
    """
    started = time.monotonic()
    spec = resolve_spec(spec, snapshot.modality)
    requested_hash = spec.spec_hash()
    check_trainable(snapshot, spec)
    parent = None
    if init_from is not None:
        problem = warm_start_problem(init_from, snapshot, spec)
        if problem:
            raise ValueError(f"cannot warm-start {snapshot.name} from that model: {problem}")
        parent = read_parent(init_from)
        spec = inherit_architecture(spec, parent, snapshot.modality)
    spec = fit_to_data(spec, snapshot, split_indices(snapshot, spec.eval_fraction)["train"], warm=parent is not None)
    labels = list(snapshot.labels)
    pinned = {name: (s, *_pinned_targets(snapshot.labels, name, s, snapshot.modality)) for name, s in (eval_sets or {}).items()}
    # Trainer(deterministic=True) flips process-wide torch flags; put them back for whatever runs next in this process
    flags = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        L.seed_everything(spec.seed, workers=True, verbose=False)
        dm = SnapshotDataModule(snapshot, spec, data_info=parent.data_info if parent else None)
        net = build_model(spec, len(labels), dm.data_info)  # after seeding: initial weights are reproducible
        if parent is not None:
            load_parent_weights(net, parent)
        module = ClassifierModule(net, len(labels), spec.learning_rate, spec.weight_decay, spec.lr_schedule, spec.warmup_fraction)
        trainer, state = _fit(spec, module, dm, progress, should_stop)
        device = trainer.strategy.root_device  # with ddp_fork the parent evaluates on rank 0's device
        sets = {"eval": (snapshot, dm.eval_rows, dm.targets(dm.eval_rows)), **pinned}
        # The unlabeled examples get the model's guesses too: the labeling workbench pre-selects them.
        unlabeled = [r for r, t in enumerate(snapshot.targets) if t < 0]
        if unlabeled and "unlabeled" not in sets:
            sets["unlabeled"] = (snapshot, unlabeled, [-1] * len(unlabeled))
        metrics, table = score_sets(net, sets, dm.encode, spec, labels, device, datasets={"eval": dm.dataset("eval")})
        net.cpu()
        if device.type == "cuda":
            torch.cuda.empty_cache()  # a worker process lives on; give the memory back to the next run
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    return TrainResult(
        weights=save_weights(net, spec, labels, dm.data_info),
        spec=spec.model_dump(mode="json"),
        spec_hash=requested_hash,
        metrics=metrics,
        curves={name: state.get("curves", {}).get(name, []) for name in CURVES},
        predictions=predictions_parquet(table),
        device=_device_name(trainer),
        epochs_run=int(state.get("epochs_run", 0)),
        duration_s=time.monotonic() - started,
        labels=labels,
    )

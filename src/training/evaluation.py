"""A trained checkpoint tested, once, on the test split of its protocol (KTH, course: persons 17-25).

    results = evaluate("models/GRUCell/best.pth")     # the command line: python -m src.evaluate

Reports clip accuracy, video accuracy (logits averaged over ``data.eval_clips_per_video`` evenly spaced
clips per video), per-class accuracy, the confusion matrix, the trainable parameter count, training time
per epoch (from the checkpoint's history), inference latency per clip at batch 1 and throughput at batch
32 (:func:`measure_speed`), and writes them to ``results.json`` beside the checkpoint (:func:`write_json`).
Warnings (other data than the training's, a last.pth that cannot give the whole history) go to this
module's logger.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from src.data.dataset import VideoClipDataset
from src.data.index import is_prepared, resolve_data_root
from src.files import atomic_write, check_output_file
from src.nets.classifier import ActionClassifier, count_parameters
from src.training.checkpoint import CheckpointReadError, load_checkpoint, load_model
from src.training.device import select_device
from src.training.early import early_recognition
from src.training.loop import dataset_from_config
from src.training.metrics import classification_metrics, clip_logits, clip_video_index, summarize_history
from src.training.provenance import RUN_FILES, code_version, describe_data, in_another_runs_folder, split_record

logger = logging.getLogger(__name__)


class DataMismatchError(ValueError):
    """Test data that does not fit the checkpoint (other classes, other channels). ``problem`` says how,
    naming the data and the checkpoint; ``setting`` is a config setting that would fit (or None);
    :meth:`wording` says what to give instead, naming the argument that takes the data."""

    def __init__(self, problem: str, setting: str | None = None):
        self.problem, self.setting = problem, setting
        super().__init__(self.wording("data_root"))

    def wording(self, data_argument: str) -> str:
        alternative = f"set {self.setting} or " if self.setting else ""
        return f"{self.problem}; {alternative}give {data_argument} the prepared data it was trained on"


def _benchmark_timer() -> type:
    """torch.utils.benchmark.Timer, imported on first use without the warning its import logs on a machine
    with a CUDA_HOME and no CUDA runtime (torch.utils.cpp_extension's, one line on stderr)."""
    cpp_extension_logger = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_extension_logger.level
    cpp_extension_logger.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        cpp_extension_logger.setLevel(level)
    return Timer


@torch.inference_mode()
def measure_speed(model: torch.nn.Module, clip_shape: tuple[int, ...], device: torch.device,
                  repeats: int = 20, batch_size: int = 32) -> dict:
    """Inference speed on random clips of ``clip_shape`` = (T, C, H, W), timed by torch.utils.benchmark
    (its warm-up first; the accelerator synchronized; this process's torch threads).

    Returns ``{'latency_ms': mean ms per forward pass at batch 1 over ``repeats`` passes, each waited for,
    'throughput_clips_per_s': clips per second at ``batch_size``, over ``max(2, repeats // 4)`` passes}``.
    """
    model.eval()
    synchronize = torch.accelerator.synchronize if torch.accelerator.is_available() else (lambda: None)
    timer_class = _benchmark_timer()

    def seconds_per_pass(clips: torch.Tensor, stmt: str, number: int) -> float:
        timer = timer_class(stmt=stmt, globals={"model": model, "clips": clips, "synchronize": synchronize},
                                num_threads=torch.get_num_threads())
        return timer.timeit(number).mean

    latency = seconds_per_pass(torch.rand(1, *clip_shape, device=device), "model(clips); synchronize()", repeats)
    batch_seconds = seconds_per_pass(torch.rand(batch_size, *clip_shape, device=device), "model(clips)",
                                     max(2, repeats // 4))
    return {"latency_ms": 1000 * latency, "throughput_clips_per_s": batch_size / batch_seconds}


def results_path(checkpoint_path: str | Path) -> Path:
    """Where :func:`evaluate` writes the results of a checkpoint: ``results.json`` beside it."""
    return Path(checkpoint_path).with_name("results.json")


class ForeignFolderError(ValueError):
    """A checkpoint in the folder of another run, whose results.json would be counted as that run's
    (:func:`check_results_folder`); one line naming the checkpoint, both runs and what to do."""


def check_results_folder(checkpoint_path: Path, checkpoint: dict) -> None:
    """Refuse (ForeignFolderError) a checkpoint of run ``config['experiment']`` whose results.json would land in the
    folder of another run: a folder named otherwise (src.training.provenance.in_another_runs_folder, the rule
    src.analysis follows) that holds a run's files (:data:`src.training.provenance.RUN_FILES`) besides the
    checkpoint, e.g. OwnGRU's best.pth copied over GRUCell's in models/GRUCell/. A folder that holds none (a
    temporary or download folder with a copied checkpoint) is no run's folder: it is evaluated there, and src.compare
    refuses that results.json if the folder is ever put under a models dir."""
    run = checkpoint["config"]["experiment"]
    refusal = in_another_runs_folder(checkpoint_path, run, "checkpoint")
    folder = checkpoint_path.parent
    if refusal and any((folder / name).exists() and (folder / name) != checkpoint_path for name in RUN_FILES):
        raise ForeignFolderError(f"{refusal}, whose results.json would be counted as {folder.name}'s; put it in "
                                 f"{folder.parent / run}/, or evaluate it from a folder of its own")


def nan_as_null(value):
    """``value`` with every float NaN (in dicts and lists) made None: JSON's ``null`` (``NaN`` is not JSON). A
    NaN is a number that does not exist, e.g. the accuracy of a class without test clips."""
    if isinstance(value, dict):
        return {key: nan_as_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_as_null(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def write_json(data: dict, path: str | Path) -> Path:
    """Write ``data`` as JSON atomically (:func:`src.files.atomic_write`; no temp file is left when
    it fails): one top-level key per line, and a list of rows (``history``, ``predictions``) one
    row per line, so that the file stays small and diffs stay readable; NaN as ``null`` (:func:`nan_as_null`)."""
    path = Path(path)
    lines = []
    for key, value in nan_as_null(data).items():
        if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
            rows = ",\n".join(f"  {json.dumps(row)}" for row in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    with atomic_write(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    return path


@dataclass
class EvaluatedSplit:
    """What one pass over the test split gave: its dataset, the logits (N, C) float32 and labels (N,) int64
    of its N clips, their metrics (:func:`src.training.metrics.classification_metrics`), the device and
    precision it ran in, and the model's speed there (:func:`measure_speed`)."""

    test_set: VideoClipDataset
    logits: torch.Tensor
    labels: torch.Tensor
    metrics: dict
    device: torch.device
    precision: str
    speed: dict


def evaluate(checkpoint_path: str | Path, data_root: str | Path | None = None, device: str | torch.device = "auto",
             batch_size: int | None = None, write: bool = True, early: bool = True,
             check_folder: bool | None = None) -> dict:
    """Test a checkpoint on its test split (the protocol it was trained under) and write ``results.json`` beside it.

    Args:
        checkpoint_path: ``models/<experiment>/best.pth`` (or any checkpoint of src.train).
        data_root: prepared dataset folder; default the one the checkpoint was trained on
            (when it still exists), else the config's ``data.root``.
        device: ``auto`` (cuda, then mps, then cpu) or a device name.
        batch_size: for the test pass; default the config's ``train.batch_size``.
        write: write results.json beside the checkpoint (:func:`results_path`).
        early: also measure early recognition (src/training/early.py: the keys ``early_recognition`` and
            ``state_rules``); False leaves them out.
        check_folder: refuse a checkpoint in the folder of another run (:func:`check_results_folder`), before the
            data is read; default ``write`` (src.evaluate, which writes results.json itself, says True).

    Returns:
        The results (the keys of results.json): experiment, seed, checkpoint, config,
        data_root, synthetic, device, best_epoch, val_accuracy, val_video_accuracy,
        num_test_clips, num_test_videos, clip_accuracy, video_accuracy, classes (the checkpoint's
        class names: label i is classes[i]), per_class_accuracy ({class name: accuracy}, in that
        order), confusion_matrix ([C][C] clip counts, rows true), num_params,
        epoch_time_s (mean wall time of a training epoch, validation included, over
        all epochs of the run), epochs, data_wait_share, time_to_best_s (training time up
        to the best epoch), test_loss, latency_ms, throughput_clips_per_s, torch_threads,
        amp (mixed precision used in the test pass), precision (of the test pass: float32, bfloat16
        or float16, the training's where the device allows), provenance (test and training data
        with fingerprints, persons of each split as loaded, code versions: see
        src/training/provenance.py), history (every epoch's row, from last.pth), predictions (one
        row per test clip: video_id, start frame, label, predicted, probabilities); with ``early``,
        early_recognition (accuracy after 1..max_frames steps of each test clip streamed, and after 10 %, ...,
        100 % of each test subsequence) and state_rules (each state rule's accuracy on whole test subsequences,
        and under ``validation`` on whole validation subsequences, the split a rule is chosen on; None for a clip
        model): :func:`src.training.early.early_recognition`.

    Raises, before the test pass: ValueError for a device this machine lacks or a results.json
    that cannot be written, DataMismatchError (a ValueError) for a dataset whose classes or channels are
    not the checkpoint's, ForeignFolderError (a ValueError) for a checkpoint in another run's folder;
    FileNotFoundError for a missing checkpoint or a ``data_root`` that is not
    prepared; CheckpointReadError for a file that is no checkpoint of src.train. Each message is one
    line naming the argument or the file.
    """
    checkpoint_path = Path(checkpoint_path)
    device = select_device(device)
    if write:
        check_output_file(results_path(checkpoint_path))
    if data_root is not None and str(data_root) != "auto":
        resolve_data_root(data_root)  # a folder that is not prepared is refused before the checkpoint is read
    model, checkpoint = load_trained_model(checkpoint_path, device)
    check_folder = write if check_folder is None else check_folder
    if check_folder:  # before the data is read
        check_results_folder(checkpoint_path, checkpoint)
    data_root, synthetic = data_root_to_test(checkpoint, data_root)
    data = checkpoint["config"]["data"]
    test_data = describe_data(data_root, preset=data["synthetic_preset"] if synthetic else None)
    trained = checkpoint["provenance"]
    if trained["data"]["fingerprint"] != test_data["fingerprint"]:
        logger.warning("%s was trained on %s, tested now on %s (other frames); results.json records both",
                       checkpoint_path, trained["data"]["root"], data_root)
    test_set = make_test_set(checkpoint["config"], data_root)
    check_test_set(test_set, checkpoint, checkpoint_path, data_root)
    test = run_test_pass(model, test_set, checkpoint["config"], precision_of_test(trained, device), device, batch_size)
    history = full_history(checkpoint_path, checkpoint)
    # the state rules, the one record measured on validation too, are a recurrent model's: a clip model reads no
    # validation split
    val_set = make_val_set(checkpoint["config"], data_root) if early and isinstance(model, ActionClassifier) else None
    records = early_recognition(model, test_set, device, test.precision,
                                batch_size or checkpoint["config"]["train"]["batch_size"],
                                val_set=val_set) if early else {}
    results = {"experiment": checkpoint["config"]["experiment"], "seed": checkpoint["config"]["train"]["seed"],
               "checkpoint": str(checkpoint_path), "data_root": str(data_root), "synthetic": synthetic,
               **results_of(test, model, checkpoint, history), **records,
               "provenance": provenance_of_test(test_data, trained, test_set), "config": checkpoint["config"],
               "history": history, "predictions": clip_predictions(test_set, test.logits, test.labels)}
    if write:
        write_json(results, results_path(checkpoint_path))
    return results


def load_trained_model(checkpoint_path: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """``(model in eval mode on device, checkpoint)`` of a checkpoint of src.train (:func:`load_model`);
    CheckpointReadError for one without the training metrics and provenance that train() writes."""
    model, checkpoint = load_model(checkpoint_path, map_location=device)
    metrics = checkpoint.get("metrics")
    if not isinstance(metrics, dict) or "best" not in metrics or "provenance" not in checkpoint:
        raise CheckpointReadError(f"{checkpoint_path}: holds no training metrics (a checkpoint saved by other code?); "
                                  f"give a checkpoint of 'python -m src.train' (models/<experiment>/best.pth)")
    return model, checkpoint


def data_root_to_test(checkpoint: dict, data_root: str | Path | None) -> tuple[Path, bool]:
    """``(prepared folder, synthetic)`` to test on (:func:`src.data.index.resolve_data_root`): ``data_root``,
    by default the folder the checkpoint was trained on when it is still prepared, else its config's
    ``data.root``."""
    data = checkpoint["config"]["data"]
    if data_root is None:
        trained_on = checkpoint.get("data_root")
        data_root = trained_on if trained_on and is_prepared(trained_on) else data["root"]
    return resolve_data_root(data_root, preset=data["synthetic_preset"])


def precision_of_test(trained: dict, device: torch.device) -> str:
    """The precision of the test pass: the training's (``trained``: its provenance), as validation used it,
    where ``device`` allows (float16 only on CUDA; float32 on devices other than CUDA and the CPU)."""
    precision = trained["precision"]
    if (precision == "float16" and device.type != "cuda") or device.type not in ("cuda", "cpu"):
        return "float32"
    return precision


def make_test_set(config: dict, data_root: Path) -> VideoClipDataset:
    """The test split of the config's protocol (:func:`src.training.loop.dataset_from_config`, the one place a
    dataset is built from a config): ``data.eval_clips_per_video`` evenly spaced clips per video."""
    return dataset_from_config(config, data_root, "test")


def make_val_set(config: dict, data_root: Path) -> VideoClipDataset:
    """The validation split of the config's protocol, the trainer's (:func:`src.training.loop.make_datasets`),
    made as the test set is (:func:`make_test_set`): early recognition measures the state rules on it, the split a
    rule is chosen on."""
    return dataset_from_config(config, data_root, "val")


def check_test_set(test_set: VideoClipDataset, checkpoint: dict, checkpoint_path: Path, data_root: Path) -> None:
    """DataMismatchError when the test set's classes or channels are not the checkpoint's."""
    classes, channels = checkpoint["classes"], checkpoint["channels"]
    if list(test_set.classes) != classes:
        raise DataMismatchError(f"{data_root}: {_class_difference(test_set.classes, classes)}, so its labels are "
                                f"not the outputs of {checkpoint_path}")
    if test_set.channels != channels:
        raise DataMismatchError(f"{data_root}: frames of {test_set.channels} channel(s), {checkpoint_path} takes "
                                f"{channels}", setting=f"data.channels: {channels}")


def _class_difference(data_classes: list[str], checkpoint_classes: list[str]) -> str:
    """How the data's classes differ from the checkpoint's, in a few words: ``'its class 2 is 'run',
    the checkpoint's 'running''`` or ``'it has 4 classes, the checkpoint 6'``."""
    for position, (ours, theirs) in enumerate(zip(data_classes, checkpoint_classes)):
        if ours != theirs:
            return f"its class {position} is {ours!r}, the checkpoint's {theirs!r}"
    return f"it has {len(data_classes)} classes, the checkpoint {len(checkpoint_classes)}"


def run_test_pass(model: torch.nn.Module, test_set: VideoClipDataset, config: dict, precision: str,
                  device: torch.device, batch_size: int | None = None) -> EvaluatedSplit:
    """The logits of every test clip in ``precision`` (batches of ``batch_size``, default the config's
    ``train.batch_size``), their metrics, and the model's speed on ``device``."""
    loader = DataLoader(test_set, batch_size=batch_size or config["train"]["batch_size"], shuffle=False,
                        num_workers=config["data"]["num_workers"], pin_memory=device.type == "cuda")
    logits, labels, _ = clip_logits(model, loader, device, precision, desc="test")
    metrics = classification_metrics(logits, labels, clip_video_index(test_set), num_classes=len(test_set.classes))
    speed = measure_speed(model, tuple(test_set[0][0].shape), device, repeats=config["eval"]["latency_repeats"])
    return EvaluatedSplit(test_set, logits, labels, metrics, device, precision, speed)


def results_of(test: EvaluatedSplit, model: torch.nn.Module, checkpoint: dict, history: list[dict]) -> dict:
    """The results' numbers: where the test ran, the training's best epoch and times (``history``: every
    epoch's row), the test accuracies, the model's size and speed."""
    best, classes, metrics = checkpoint["metrics"]["best"], checkpoint["classes"], test.metrics
    training = summarize_history(history, best)
    return {"device": str(test.device), "torch_threads": torch.get_num_threads(),
            "best_epoch": best["epoch"], "val_accuracy": best["val_accuracy"],
            "val_video_accuracy": best["val_video_accuracy"],
            "num_test_clips": len(test.test_set), "num_test_videos": len(test.test_set.videos),
            "clip_accuracy": metrics["accuracy"], "video_accuracy": metrics["video_accuracy"], "classes": classes,
            "per_class_accuracy": dict(zip(classes, metrics["per_class_accuracy"], strict=True)),
            "confusion_matrix": metrics["confusion_matrix"], "test_loss": metrics["loss"],
            "num_params": count_parameters(model), "epoch_time_s": training["time_per_epoch_s"],
            "epochs": training["epochs"], "data_wait_share": training["data_wait_share"],
            "time_to_best_s": training["time_to_best_s"], **test.speed,
            "amp": test.precision != "float32", "precision": test.precision}


def provenance_of_test(test_data: dict, trained: dict, test_set: VideoClipDataset) -> dict:
    """What made the results: the test data (``test_data``: :func:`src.training.provenance.describe_data`) and
    the training's (``trained``: the checkpoint's provenance), the split as loaded, both code versions, and
    the training's precision, device and machine."""
    return {"data": test_data, "train_data": trained["data"], "classes": test_set.classes,
            **split_record({"test": test_set}, trained=trained),
            "code_version": code_version(), "train_code_version": trained["code_version"],
            "train_amp": trained["amp"], "train_precision": trained["precision"],
            "train_device": trained["device"], "train_machine": trained["machine"]}


def full_history(checkpoint_path: Path, checkpoint: dict) -> list[dict]:
    """Every epoch's row of the run: from last.pth beside the checkpoint (best.pth's history
    stops at the best epoch), when it belongs to the same run and can be read; else the checkpoint's own
    (with a warning)."""
    history = checkpoint["metrics"]["history"]
    last_path = checkpoint_path.with_name("last.pth")
    if last_path.is_file() and last_path != checkpoint_path:
        try:
            last = load_checkpoint(last_path)["metrics"]["history"]
        except (CheckpointReadError, KeyError, TypeError):  # truncated, or not a checkpoint of src.train
            logger.warning("%s: holds no readable history; the history stops at epoch %d", last_path, len(history))
            return history
        if last[:len(history)] == history:
            return last
        logger.warning("%s is not the continuation of %s; the history stops at epoch %d", last_path,
                       checkpoint_path, len(history))
    return history


def clip_predictions(dataset: VideoClipDataset, logits: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """One row per test clip of ``logits`` (N, C) and ``labels`` (N,), in dataset order: ``{'video_id', 'start'
    (first frame of the clip's window), 'label', 'predicted' (indices into the results' ``classes``),
    'probabilities' (C, rounded to 1e-4)}``."""
    probabilities = logits.softmax(1)
    return [{"video_id": dataset.videos[video]["video_id"], "start": int(dataset.windows[i][0]),
             "label": int(labels[i]), "predicted": int(probabilities[i].argmax()),
             "probabilities": [round(p, 4) for p in probabilities[i].tolist()]}
            for i, (video, _) in enumerate(dataset.clips)]

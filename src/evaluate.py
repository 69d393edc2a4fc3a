"""Evaluate a trained checkpoint on the test split of its protocol (KTH, course: persons 17-25), once.

    python -m src.evaluate --checkpoint models/GRUCell/best.pth [--data DIR]

or ``evaluate("models/GRUCell/best.pth")`` from a notebook. Reports clip accuracy, video
accuracy (logits averaged over ``data.eval_clips_per_video`` evenly spaced clips per
video), per-class accuracy, the confusion matrix, the trainable parameter count, training
time per epoch (from the checkpoint's history), inference latency per clip at batch 1 and
throughput at batch 32; writes them to ``results.json`` beside the checkpoint.

Bad arguments (a missing or foreign ``--checkpoint``, a ``--device`` this machine lacks, a
``--data`` folder that is not prepared, a folder where results.json cannot be written) get one
line before the test pass starts; a results.json that fails to write at the end gets one line
after the table.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from src.data.dataset import VideoClipDataset
from src.data.index import is_prepared, resolve_data_root
from src.files import atomic_write, check_output_file
from src.nets.classifier import count_parameters
from src.training.checkpoint import CheckpointReadError, load_checkpoint, load_model
from src.training.device import select_device
from src.training.metrics import classification_metrics, clip_logits, clip_video_index, summarize_history
from src.training.provenance import code_version, describe_data, split_record


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@torch.inference_mode()
def measure_speed(model: torch.nn.Module, clip_shape: tuple[int, ...], device: torch.device,
                  repeats: int = 20, batch_size: int = 32) -> dict:
    """Inference speed on random clips of ``clip_shape`` = (T, C, H, W).

    Returns ``{'latency_ms': median ms per forward pass at batch 1 over ``repeats`` passes
    (after warm-up), 'throughput_clips_per_s': clips per second at ``batch_size``}``.
    """
    model.eval()
    single = torch.rand(1, *clip_shape, device=device)
    batch = torch.rand(batch_size, *clip_shape, device=device)
    for _ in range(3):  # warm-up: allocator, cudnn autotune, lazy init
        model(single)
        model(batch)
    _synchronize(device)
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(single)
        _synchronize(device)
        latencies.append(time.perf_counter() - start)
    batch_repeats = max(2, repeats // 4)
    start = time.perf_counter()
    for _ in range(batch_repeats):
        model(batch)
    _synchronize(device)
    elapsed = time.perf_counter() - start
    return {"latency_ms": 1000 * statistics.median(latencies),
            "throughput_clips_per_s": batch_repeats * batch_size / elapsed}


def results_path(checkpoint_path: str | Path) -> Path:
    """Where :func:`evaluate` writes the results of a checkpoint: ``results.json`` beside it."""
    return Path(checkpoint_path).with_name("results.json")


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


def evaluate(checkpoint_path: str | Path, data_root: str | Path | None = None, device: str | torch.device = "auto",
             batch_size: int | None = None, write: bool = True) -> dict:
    """Test a checkpoint on its test split (the protocol it was trained under) and write ``results.json`` beside it.

    Args:
        checkpoint_path: ``models/<experiment>/best.pth`` (or any checkpoint of src.train).
        data_root: prepared dataset folder; default the one the checkpoint was trained on
            (when it still exists), else the config's ``data.root``.
        device: ``auto`` (cuda, then mps, then cpu) or a device name.
        batch_size: for the test pass; default the config's ``train.batch_size``.
        write: write results.json beside the checkpoint (:func:`results_path`).

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
        row per test clip: video_id, start frame, label, predicted, probabilities).

    Raises, before the test pass: ValueError for a device this machine lacks, a results.json
    that cannot be written, a broken dataset or one whose classes are not the checkpoint's;
    FileNotFoundError for a missing checkpoint or a ``data_root`` that is not prepared;
    CheckpointReadError for a file that is no checkpoint of src.train. Each message is one line
    naming the argument or the file.
    """
    checkpoint_path = Path(checkpoint_path)
    device = select_device(device)
    if write:
        check_output_file(results_path(checkpoint_path))
    if data_root is not None and str(data_root) != "auto":
        resolve_data_root(data_root)  # a folder that is not prepared is refused before the checkpoint is read
    model, checkpoint = load_model(checkpoint_path, map_location=device)
    if not isinstance(checkpoint.get("metrics"), dict) or "best" not in checkpoint["metrics"]:
        raise CheckpointReadError(f"{checkpoint_path}: holds no training metrics (a checkpoint saved by other code?); "
                                  f"give a checkpoint of 'python -m src.train' (models/<experiment>/best.pth)")
    config, classes = checkpoint["config"], checkpoint["classes"]  # load_model sets classes for older checkpoints
    data = config["data"]
    if data_root is None:
        trained_on = checkpoint.get("data_root")
        data_root = trained_on if trained_on and is_prepared(trained_on) else data["root"]
    data_root, synthetic = resolve_data_root(data_root, preset=data["synthetic_preset"])
    trained = checkpoint.get("provenance") or {}
    test_data = describe_data(data_root, preset=data["synthetic_preset"] if synthetic else None)
    if trained and trained["data"]["fingerprint"] != test_data["fingerprint"]:
        print(f"warning: {checkpoint_path} was trained on {trained['data']['root']}, tested now on {data_root} "
              f"(other frames); results.json records both", file=sys.stderr)
    # the same precision as validation during training (checkpoints before "precision": float16 where "amp");
    # float16 only on CUDA, float32 elsewhere
    precision = trained.get("precision") or ("float16" if trained.get("amp") else "float32")
    if (precision == "float16" and device.type != "cuda") or device.type not in ("cuda", "cpu"):
        precision = "float32"

    test_set = VideoClipDataset(  # the split of training: the config's protocol (an older config's: the defaults)
        data_root, split="test", clips_per_video=data["eval_clips_per_video"],
        slicing_step=data["slicing_step"], max_frames=data["max_frames"], img_size=(data["img_size"], data["img_size"]),
        use_sequences=data["use_sequences"], protocol=data, channels=data.get("channels", 1))
    if list(test_set.classes) != classes:
        raise ValueError(f"{data_root}: {_class_difference(test_set.classes, classes)}, so its labels are not the "
                         f"outputs of {checkpoint_path}; give --data the prepared data it was trained on")
    if test_set.channels != checkpoint["channels"]:
        raise ValueError(f"{data_root}: frames of {test_set.channels} channel(s), {checkpoint_path} takes "
                         f"{checkpoint['channels']}; set data.channels: {checkpoint['channels']} or give --data the "
                         f"prepared data it was trained on")
    loader = DataLoader(test_set, batch_size=batch_size or config["train"]["batch_size"], shuffle=False,
                        num_workers=data["num_workers"], pin_memory=device.type == "cuda")
    logits, labels, _ = clip_logits(model, loader, device, precision, desc="test")
    metrics = classification_metrics(logits, labels, clip_video_index(test_set), num_classes=len(classes))
    speed = measure_speed(model, tuple(test_set[0][0].shape), device, repeats=config["eval"]["latency_repeats"])

    best = checkpoint["metrics"]["best"]
    history = full_history(checkpoint_path, checkpoint)
    training = summarize_history(history, best)
    results = {
        "experiment": config["experiment"],
        "seed": config["train"]["seed"],
        "checkpoint": str(checkpoint_path),
        "data_root": str(data_root),
        "synthetic": synthetic,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "best_epoch": best["epoch"],
        "val_accuracy": best["val_accuracy"],
        "val_video_accuracy": best["val_video_accuracy"],
        "num_test_clips": len(test_set),
        "num_test_videos": len(test_set.videos),
        "clip_accuracy": metrics["accuracy"],
        "video_accuracy": metrics["video_accuracy"],
        "classes": classes,
        "per_class_accuracy": dict(zip(classes, metrics["per_class_accuracy"], strict=True)),
        "confusion_matrix": metrics["confusion_matrix"],
        "test_loss": metrics["loss"],
        "num_params": count_parameters(model),
        "epoch_time_s": training["time_per_epoch_s"],
        "epochs": training["epochs"],
        "data_wait_share": training["data_wait_share"],
        "time_to_best_s": training["time_to_best_s"],
        **speed,
        "amp": precision != "float32",
        "precision": precision,
        "provenance": {"data": test_data, "train_data": trained.get("data"), "classes": test_set.classes,
                       **split_record({"test": test_set}, trained=trained),
                       "code_version": code_version(), "train_code_version": trained.get("code_version"),
                       "train_amp": trained.get("amp"), "train_precision": trained.get("precision"),
                       "train_device": trained.get("device"), "train_machine": trained.get("machine")},
        "config": config,
        "history": history,
        "predictions": clip_predictions(test_set, logits, labels),
    }
    if write:
        write_json(results, results_path(checkpoint_path))
    return results


def _class_difference(data_classes: list[str], checkpoint_classes: list[str]) -> str:
    """How the data's classes differ from the checkpoint's, in a few words: ``'its class 2 is 'run',
    the checkpoint's 'running''`` or ``'it has 4 classes, the checkpoint 6'``."""
    for position, (ours, theirs) in enumerate(zip(data_classes, checkpoint_classes)):
        if ours != theirs:
            return f"its class {position} is {ours!r}, the checkpoint's {theirs!r}"
    return f"it has {len(data_classes)} classes, the checkpoint {len(checkpoint_classes)}"


def full_history(checkpoint_path: Path, checkpoint: dict) -> list[dict]:
    """Every epoch's row of the run: from last.pth beside the checkpoint (best.pth's history
    stops at the best epoch), when it belongs to the same run and can be read; else the checkpoint's own."""
    history = checkpoint["metrics"]["history"]
    last_path = checkpoint_path.with_name("last.pth")
    if last_path.is_file() and last_path != checkpoint_path:
        try:
            last = load_checkpoint(last_path)["metrics"]["history"]
        except (CheckpointReadError, KeyError, TypeError):  # truncated, or not a checkpoint of src.train
            print(f"warning: {last_path}: holds no readable history; the history stops at epoch {len(history)}",
                  file=sys.stderr)
            return history
        if last[:len(history)] == history:
            return last
        print(f"warning: {last_path} is not the continuation of {checkpoint_path}; the history stops at "
              f"epoch {len(history)}", file=sys.stderr)
    return history


def clip_predictions(dataset: VideoClipDataset, logits: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """One row per test clip, in dataset order: ``{'video_id', 'start' (first frame of the
    clip's window), 'label', 'predicted' (indices into the results' ``classes``), 'probabilities' (C, rounded
    to 1e-4)}``."""
    probabilities = logits.softmax(1)
    return [{"video_id": dataset.videos[video]["video_id"], "start": int(dataset.windows[i][0]),
             "label": int(labels[i]), "predicted": int(probabilities[i].argmax()),
             "probabilities": [round(p, 4) for p in probabilities[i].tolist()]}
            for i, (video, _) in enumerate(dataset.clips)]


def print_table(results: dict) -> None:
    rows = [("experiment", results["experiment"]),
            ("data", f"{results['data_root']}{' (synthetic twin)' if results['synthetic'] else ''}"),
            ("best epoch / val acc", f"{results['best_epoch']} / {results['val_accuracy']:.4f}"),
            ("test clip accuracy", f"{results['clip_accuracy']:.4f}  ({results['num_test_clips']} clips)"),
            ("test video accuracy", f"{results['video_accuracy']:.4f}  ({results['num_test_videos']} videos)"),
            *[(f"  {action}", "–  (no test videos)" if acc is None or acc != acc else f"{acc:.4f}")
              for action, acc in results["per_class_accuracy"].items()],
            ("trainable parameters", f"{results['num_params']:,}"),
            ("epoch wall time (train+val)", f"{results['epoch_time_s']:.1f} s, mean of {results['epochs']} epochs"),
            ("latency (batch 1)", f"{results['latency_ms']:.2f} ms/clip on {results['device']}"),
            ("throughput (batch 32)", f"{results['throughput_clips_per_s']:.0f} clips/s")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="e.g. models/GRUCell/best.pth")
    parser.add_argument("--data", default=None, help="prepared dataset folder (default: the one trained on)")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a device name")
    args = parser.parse_args(argv)
    path = results_path(args.checkpoint)
    try:
        device = select_device(args.device, key="--device")
        check_output_file(path)
        results = evaluate(args.checkpoint, data_root=args.data, device=device, write=False)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        sys.exit(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    print_table(results)
    try:
        write_json(results, path)
    except OSError as e:
        sys.exit(f"error: {path}: could not write the results ({e.strerror or e}); they are printed above")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()

"""Speed of the data pipeline: one full pass over the training split, against a training epoch.

Two pipelines: the trainer's (src/data/batches.py: ClipBatches with ClipBatchAugmentation,
whole batches by index arithmetic, no prefetch thread) and the per-item one
(KTHActionDataset + get_train_transforms through a DataLoader, the course's call).

    python bench/data.py                 # data/synth if prepared, else the tiny twin in a temp dir
    python bench/data.py data/kth        # any prepared root
    python bench/data.py --fake          # random frames with the full KTH training split's videos

Builds the training set from the ``data`` section of ``--config`` (per item: the train transforms of its
``augment`` section; per batch: ClipBatchAugmentation of the same section), iterates a DataLoader
with the project's defaults (batch 32, shuffle, num_workers from the config) and prints the load time,
the seconds per pass and clips/s (median over ``--passes``, and the fastest pass: on a shared machine the
fastest is the least disturbed). Between passes it times training steps of the
config's model on the last batch and prints the ratio of a data pass to a training
epoch (issue 3's goal: under 5%). The item cost does not depend on how long the
videos are, so ``--fake`` uses short videos (``--fake-frames``) to spare memory.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from src.checks import load_checked_config  # noqa: E402
from src.data.augment import ClipBatchAugmentation, get_train_transforms  # noqa: E402
from src.data.batches import ClipBatches  # noqa: E402
from src.data.dataset import KTHActionDataset  # noqa: E402
from src.data.index import SYNTHETIC_ROOT, is_prepared  # noqa: E402
from src.data.prepare import prepare  # noqa: E402
from src.data.sources.kth import TRAIN_PERSONS, all_video_ids, parse_video_name  # noqa: E402
from src.data.synthetic import generate  # noqa: E402
from src.nets.classifier import build_model  # noqa: E402
from src.training.device import select_device  # noqa: E402


def write_fake_dataset(root: Path, num_frames: int, size: int) -> Path:
    """A prepared dataset of random frames: every KTH video of persons 1-16, ``num_frames``
    frames each, four annotated subsequences."""
    (root / "cache").mkdir(parents=True)
    generator = np.random.default_rng(0)
    quarter = num_frames // 4
    entries = []
    for vid in all_video_ids():
        info = parse_video_name(vid)
        if info["person"] not in TRAIN_PERSONS:
            continue
        np.save(root / "cache" / f"{vid}.npy", generator.integers(0, 256, (num_frames, size, size), dtype=np.uint8))
        sequences = [[q * quarter + 2, (q + 1) * quarter - 2] for q in range(4)]
        entries.append({**info, "num_frames": num_frames, "sequences": sequences})
    (root / "index.json").write_text(json.dumps({"version": 1, "size": size, "synthetic": True, "videos": entries}))
    return root


def choose_dataset(args: argparse.Namespace, tmp: Path, img_size: int) -> tuple[Path, str]:
    """``(prepared root, how to name it)``: the fake dataset (``--fake``), the root given, data/synth when
    prepared, else the tiny twin built in ``tmp``."""
    if args.fake:
        return write_fake_dataset(tmp / "fake", args.fake_frames, img_size), "fake (random frames)"
    if args.root is not None:
        return Path(args.root), args.root
    if is_prepared(SYNTHETIC_ROOT):
        return SYNTHETIC_ROOT, str(SYNTHETIC_ROOT)
    print(f"{SYNTHETIC_ROOT} is not prepared: building the tiny twin in {tmp}", file=sys.stderr)
    generate(tmp / "raw", preset="tiny", seed=0)
    prepare(tmp / "raw", tmp / "prepared", workers=1)
    return tmp / "prepared", "tiny synthetic twin"


def time_passes(config: dict, dataset: KTHActionDataset, args: argparse.Namespace) -> dict:
    """Alternate data passes (the DataLoader's, then ClipBatches') and training steps on the last batch,
    so that both see the same machine load. Seconds of each pass and step, the DataLoader's length, the
    last batch's frames (B, T, C, H, W) and the device."""
    batch_size = config["train"]["batch_size"]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=config["data"]["num_workers"])
    batches = ClipBatches(dataset, batch_size, augmentation=ClipBatchAugmentation(**config["augment"]), shuffle=True)
    device = select_device(args.device)
    model = build_model(config["model"], len(dataset.classes), dataset.channels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["train"]["lr"])
    torch.manual_seed(0)
    seconds = {"pass": [], "batch pass": [], "step": []}
    for epoch in tqdm(range(args.passes), desc="passes", unit="pass"):
        start = time.perf_counter()
        for frames, labels in loader:
            pass
        seconds["pass"].append(time.perf_counter() - start)
        batches.set_epoch(epoch)
        start = time.perf_counter()
        for _ in batches:
            pass
        seconds["batch pass"].append(time.perf_counter() - start)
        frames, labels = frames.to(device), labels.to(device)
        for step in range(args.train_steps + 1):  # the first is a warm-up
            start = time.perf_counter()
            train_step(model, optimizer, frames, labels, config["train"]["grad_clip"])
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step > 0:
                seconds["step"].append(time.perf_counter() - start)
    return {**seconds, "steps_per_epoch": len(loader), "frames": frames, "device": device}


def report(config: dict, dataset: KTHActionDataset, what: str, load_seconds: float, timed: dict,
           passes: int) -> None:
    """Print the data, the settings, and the passes' times against a training epoch."""
    data, steps = config["data"], timed["steps_per_epoch"]
    pass_seconds, batch_pass_seconds, step_seconds = timed["pass"], timed["batch pass"], timed["step"]
    per_pass, per_step = statistics.median(pass_seconds), statistics.median(step_seconds)
    per_epoch = per_step * steps  # training steps only, full batches
    print(f"data: {what}; train split: {len(dataset.videos)} videos, {len(dataset)} clips of "
          f"{tuple(timed['frames'].shape[1:])} (actions {sorted(set(dataset.labels))}, "
          f"scenarios {sorted({v['scenario'] for v in dataset.videos})})")
    print(f"settings: batch {config['train']['batch_size']}, shuffle, num_workers {data['num_workers']}, slicing_step "
          f"{data['slicing_step']}, clips/video {data['train_clips_per_video']}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, model on "
          f"{timed['device']}")
    print(f"load at init: {load_seconds:.2f} s")
    print(f"data pass: {per_pass:.3f} s (median of {passes}; fastest {min(pass_seconds):.3f} s), "
          f"{len(dataset) / per_pass:.0f} clips/s, {1e3 * per_pass / len(dataset):.3f} ms/clip")
    print(f"training epoch of the model ({config['model']['arch']}/{config['model']['rnn_type']}): "
          f"{per_epoch:.3f} s ({steps} steps x {per_step:.4f} s, median of {len(step_seconds)})")
    print(f"ratio data pass / training epoch: {per_pass / per_epoch:.3f} "
          f"(fastest/fastest {min(pass_seconds) / (min(step_seconds) * steps):.3f}; goal < 0.05)")
    per_batch_pass = statistics.median(batch_pass_seconds)
    print(f"the trainer's ClipBatches: data pass {per_batch_pass:.3f} s (median; fastest "
          f"{min(batch_pass_seconds):.3f} s), {len(dataset) / per_batch_pass:.0f} clips/s; ratio to the training "
          f"epoch {per_batch_pass / per_epoch:.3f} (fastest/fastest "
          f"{min(batch_pass_seconds) / (min(step_seconds) * steps):.3f}); per-item pipeline / ClipBatches "
          f"{per_pass / per_batch_pass:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default=None,
                        help=f"a prepared dataset (default: {SYNTHETIC_ROOT} if prepared, else the tiny twin)")
    parser.add_argument("--config", default=str(REPO / "configs" / "base.yaml"), help="its data section is used")
    parser.add_argument("--passes", type=int, default=3, help="timed passes (default: 3)")
    parser.add_argument("--fake", action="store_true", help="time on random frames shaped like KTH persons 1-16")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per pass (default: 3)")
    parser.add_argument("--device", default="cpu", help="where the model trains: cpu (default), cuda, auto")
    parser.add_argument("--fake-frames", type=int, default=160, help="frames per fake video (default: 160)")
    args = parser.parse_args()

    config = load_checked_config(args.config)
    data = config["data"]
    with tempfile.TemporaryDirectory() as tmp:
        root, what = choose_dataset(args, Path(tmp), data["img_size"])
        start = time.perf_counter()
        dataset = KTHActionDataset(
            root, split="train",
            transform=get_train_transforms(data["slicing_step"], data["max_frames"], **config["augment"]),
            max_frames=data["max_frames"], img_size=(data["img_size"], data["img_size"]),
            clips_per_video=data["train_clips_per_video"], val_persons=tuple(data["val_persons"]),
            use_sequences=data["use_sequences"])
        load_seconds = time.perf_counter() - start
        timed = time_passes(config, dataset, args)
    report(config, dataset, what, load_seconds, timed, args.passes)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, frames: torch.Tensor,
               labels: torch.Tensor, grad_clip: float) -> None:
    """One optimisation step as the trainer takes it (cross-entropy, gradient clipping)."""
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(frames), labels)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


if __name__ == "__main__":
    main()

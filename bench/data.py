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
from src.data.sources.kth import TRAIN_PERSONS, all_video_ids, parse_video_name  # noqa: E402
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
    data, batch_size = config["data"], config["train"]["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.fake:
            root = write_fake_dataset(Path(tmp) / "fake", args.fake_frames, data["img_size"])
            what = "fake (random frames)"
        elif args.root is not None:
            root, what = Path(args.root), args.root
        elif is_prepared(SYNTHETIC_ROOT):
            root, what = SYNTHETIC_ROOT, str(SYNTHETIC_ROOT)
        else:
            from src.data.prepare import prepare
            from src.data.synthetic import generate
            print(f"{SYNTHETIC_ROOT} is not prepared: building the tiny twin in {tmp}", file=sys.stderr)
            generate(Path(tmp) / "raw", preset="tiny", seed=0)
            prepare(Path(tmp) / "raw", Path(tmp) / "prepared", workers=1)
            root, what = Path(tmp) / "prepared", "tiny synthetic twin"

        start = time.perf_counter()
        dataset = KTHActionDataset(
            root, split="train",
            transform=get_train_transforms(data["slicing_step"], data["max_frames"], **config["augment"]),
            max_frames=data["max_frames"], img_size=(data["img_size"], data["img_size"]),
            clips_per_video=data["train_clips_per_video"], val_persons=tuple(data["val_persons"]),
            use_sequences=data["use_sequences"])
        load_seconds = time.perf_counter() - start
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=data["num_workers"])
        batches = ClipBatches(dataset, batch_size, augmentation=ClipBatchAugmentation(**config["augment"]),
                              shuffle=True)

        # Alternate data passes and training steps, so that both see the same machine load.
        device = select_device(args.device)
        model = build_model(config["model"], len(dataset.classes), dataset.channels).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["train"]["lr"])
        torch.manual_seed(0)
        pass_seconds, batch_pass_seconds, step_seconds = [], [], []
        for epoch in tqdm(range(args.passes), desc="passes", unit="pass"):
            start = time.perf_counter()
            for frames, labels in loader:
                pass
            pass_seconds.append(time.perf_counter() - start)
            batches.set_epoch(epoch)
            start = time.perf_counter()
            for _ in batches:
                pass
            batch_pass_seconds.append(time.perf_counter() - start)
            frames, labels = frames.to(device), labels.to(device)
            for step in range(args.train_steps + 1):  # the first is a warm-up
                start = time.perf_counter()
                train_step(model, optimizer, frames, labels, config["train"]["grad_clip"])
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if step > 0:
                    step_seconds.append(time.perf_counter() - start)

    per_pass, per_step = statistics.median(pass_seconds), statistics.median(step_seconds)
    per_epoch = per_step * len(loader)  # training steps only, full batches
    print(f"data: {what}; train split: {len(dataset.videos)} videos, {len(dataset)} clips of "
          f"{tuple(frames.shape[1:])} (actions {sorted(set(dataset.labels))}, "
          f"scenarios {sorted({v['scenario'] for v in dataset.videos})})")
    print(f"settings: batch {batch_size}, shuffle, num_workers {data['num_workers']}, slicing_step "
          f"{data['slicing_step']}, clips/video {data['train_clips_per_video']}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, model on {device}")
    print(f"load at init: {load_seconds:.2f} s")
    print(f"data pass: {per_pass:.3f} s (median of {args.passes}; fastest {min(pass_seconds):.3f} s), "
          f"{len(dataset) / per_pass:.0f} clips/s, {1e3 * per_pass / len(dataset):.3f} ms/clip")
    print(f"training epoch of the model ({config['model']['arch']}/{config['model']['rnn_type']}): "
          f"{per_epoch:.3f} s ({len(loader)} steps x {per_step:.4f} s, median of {len(step_seconds)})")
    print(f"ratio data pass / training epoch: {per_pass / per_epoch:.3f} "
          f"(fastest/fastest {min(pass_seconds) / (min(step_seconds) * len(loader)):.3f}; goal < 0.05)")
    per_batch_pass = statistics.median(batch_pass_seconds)
    print(f"the trainer's ClipBatches: data pass {per_batch_pass:.3f} s (median; fastest "
          f"{min(batch_pass_seconds):.3f} s), {len(dataset) / per_batch_pass:.0f} clips/s; ratio to the training "
          f"epoch {per_batch_pass / per_epoch:.3f} (fastest/fastest "
          f"{min(batch_pass_seconds) / (min(step_seconds) * len(loader)):.3f}); per-item pipeline / ClipBatches "
          f"{per_pass / per_batch_pass:.1f}x")


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

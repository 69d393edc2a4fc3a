"""Why validation accuracy collapsed under a constant learning rate: BatchNorm's running statistics.

    python bench/batchnorm_statistics.py [--config configs/GRUCell_NoScheduler.yaml] [--epochs 13]
                                         [--data data/synth] [--batches 4]

Trains the experiment with ``train.precise_bn_batches=0`` (the running averages of the
training steps, PyTorch's default) one epoch at a time (``--resume``, bit-exact), and after
every epoch validates the same weights twice: with those running statistics, and with
statistics recomputed over ``--batches`` training batches with the epoch's final weights
(``torch.optim.swa_utils.update_bn``, what the trainer now does before every validation).
Prints both accuracies per epoch and how many epochs fell below half of the best one.
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.config import load_config  # noqa: E402
from src.training.checkpoint import load_model  # noqa: E402
from src.training.engine import classification_metrics, clip_logits, clip_video_index  # noqa: E402
from src.training.trainer import make_batches, make_datasets, recompute_batchnorm_statistics, train  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/batchnorm_statistics.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/GRUCell_NoScheduler.yaml")
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--epochs", type=int, default=13)
    parser.add_argument("--batches", type=int, default=4, help="training batches the statistics are recomputed over")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    device = torch.device("cpu")
    warnings.filterwarnings("ignore", message=".*resuming .* with a changed config.*")

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for epoch in range(1, args.epochs + 1):
            config = load_config(args.config, [f"train.epochs={epoch}", "train.precise_bn_batches=0",
                                               f"log.models_dir={out}/models", f"log.tboard_dir={out}/tb"])
            train(config, data_root=args.data, resume=True)
            model, checkpoint = load_model(Path(out) / "models" / config["experiment"] / "last.pth")
            history = checkpoint["metrics"]["history"][-1]
            train_set, val_set = make_datasets(config, Path(args.data))
            train_batches, val_batches = make_batches(config, train_set, val_set, device)
            train_batches.set_epoch(epoch)
            recomputed = copy.deepcopy(model)
            recompute_batchnorm_statistics(recomputed, train_batches, args.batches)
            logits, labels, _ = clip_logits(recomputed.eval(), val_batches, device, desc="val, recomputed statistics")
            accuracy = classification_metrics(logits, labels, clip_video_index(val_set))["accuracy"]
            rows.append((epoch, history["train_loss"], history["val_accuracy"], accuracy))

    print(f"\n{config['experiment']} (train.precise_bn_batches=0), {args.data}, CPU float32; validation clip accuracy:")
    print(f"{'epoch':>5} {'train loss':>10} {'running stats':>14} {'recomputed':>11}")
    for epoch, loss, running, recomputed in rows:
        print(f"{epoch:5d} {loss:10.3f} {100 * running:13.1f}% {100 * recomputed:10.1f}%")
    for column, name in ((2, "running statistics"), (3, f"statistics recomputed over {args.batches} batches")):
        best = max(row[column] for row in rows)
        low = [row[0] for row in rows if row[column] < best / 2]
        print(f"{name}: best {100 * best:.1f}%, epochs below half of it: {low or 'none'}")


if __name__ == "__main__":
    main()

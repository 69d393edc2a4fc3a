"""Why validation accuracy collapsed under a constant learning rate: BatchNorm's running statistics.

    python bench/batchnorm_statistics.py [--config configs/GRUCell_NoScheduler.yaml] [--epochs 13]
                                         [--data data/synth] [--batches 4] [--repeats 3] [--threads 2]

Trains the experiment with ``train.precise_bn_batches=0`` (the running averages of the
training steps, PyTorch's default) one epoch at a time (``--resume``, bit-exact), and after
every epoch validates the same weights twice: with those running statistics, and with
statistics recomputed over ``--batches`` training batches with the epoch's final weights
(``torch.optim.swa_utils.update_bn``, what the trainer now does before every validation).
Prints both accuracies per epoch and how many epochs fell below half of the best one.

And what the recomputation costs per epoch (median of ``--repeats`` interleaved timings per epoch),
before and after it was made cheaper:

- before: ``update_bn`` of the whole model over ``--batches`` training batches made again
  (the epoch's first ones: gather, augmentation);
- now (:func:`src.training.loop.recompute_batchnorm_statistics`): the part of the model that
  holds the BatchNorm layers (arch rnn: the encoder alone) over the clips of the epoch's last
  training batches, which the trainer keeps (no batch is made again).

Both with the trainer's model (channels_last as configured), on the CPU; the ratio now/before,
and each as a share of the epoch (training epoch + validation + recomputation).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.checks import load_checked_config  # noqa: E402
from src.training.checkpoint import load_model  # noqa: E402
from src.training.device import cpu_description  # noqa: E402
from src.training.loop import make_batches, make_datasets, recompute_batchnorm_statistics  # noqa: E402
from src.training.metrics import classification_metrics, clip_logits, clip_video_index  # noqa: E402
from src.training.trainer import prepare_model, train  # noqa: E402


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def recomputation_costs(model, train_batches, epoch: int, num_batches: int, repeats: int) -> tuple[float, float]:
    """Median seconds of the recomputation before (the whole model over ``num_batches`` batches
    made again) and now (the trainer's function over the epoch's last batches' clips), interleaved."""
    train_batches.set_epoch(epoch)
    last_clips = [clips for clips, _ in train_batches][-num_batches:]  # what train_one_epoch keeps
    before, now = [], []
    for _ in range(repeats):
        train_batches.set_epoch(epoch)
        old_way, new_way = copy.deepcopy(model), copy.deepcopy(model)
        with torch.no_grad():
            before.append(seconds(lambda: torch.optim.swa_utils.update_bn(
                itertools.islice(train_batches, num_batches), old_way)))
        now.append(seconds(lambda: recompute_batchnorm_statistics(new_way, last_clips, num_batches)))
    return statistics.median(before), statistics.median(now)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/batchnorm_statistics.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/GRUCell_NoScheduler.yaml")
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--epochs", type=int, default=13)
    parser.add_argument("--batches", type=int, default=4, help="training batches the statistics are recomputed over")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each recomputation per epoch (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    warnings.filterwarnings("ignore", message=".*resuming .* with a changed config.*")

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for epoch in range(1, args.epochs + 1):
            config = load_checked_config(args.config, [f"train.epochs={epoch}", "train.precise_bn_batches=0",
                                               f"log.models_dir={out}/models", f"log.tboard_dir={out}/tb"])
            train(config, data_root=args.data, resume=True)
            model, checkpoint = load_model(Path(out) / "models" / config["experiment"] / "last.pth")
            model = prepare_model(model, config["train"], device)
            history = checkpoint["metrics"]["history"][-1]
            train_set, val_set = make_datasets(config, Path(args.data))
            train_batches, val_batches = make_batches(config, train_set, val_set, device)
            before, now = recomputation_costs(model, train_batches, epoch, args.batches, args.repeats)
            train_batches.set_epoch(epoch)
            recomputed = copy.deepcopy(model)
            recompute_batchnorm_statistics(recomputed, [clips for clips, _ in train_batches][-args.batches:],
                                           args.batches)
            logits, labels, _ = clip_logits(recomputed.eval(), val_batches, device, desc="val, recomputed statistics")
            accuracy = classification_metrics(logits, labels, clip_video_index(val_set))["accuracy"]
            rows.append((epoch, history["train_loss"], history["val_accuracy"], accuracy, before, now,
                         history["epoch_time_s"]))

    print(f"\n{config['experiment']} (train.precise_bn_batches=0), {args.data}, CPU float32, "
          f"{torch.get_num_threads()} threads, {cpu_description()}, torch {torch.__version__}")
    print(f"validation clip accuracy, and the recomputation's cost over {args.batches} batches "
          f"(median of {args.repeats}):")
    print(f"{'epoch':>5} {'train loss':>10} {'running stats':>14} {'recomputed':>11} {'before ms':>10} {'now ms':>8} "
          f"{'now/before':>11}")
    for epoch, loss, running, recomputed, before, now, _ in rows:
        print(f"{epoch:5d} {loss:10.3f} {100 * running:13.1f}% {100 * recomputed:10.1f}% {1000 * before:10.0f} "
              f"{1000 * now:8.0f} {now / before:10.2f}x")
    before, now = statistics.median(row[4] for row in rows), statistics.median(row[5] for row in rows)
    epoch_s = statistics.median(row[6] for row in rows)  # training epoch + validation, no recomputation
    print(f"recomputation per epoch: before {1000 * before:.0f} ms ({100 * before / (epoch_s + before):.1f} % of an "
          f"epoch), now {1000 * now:.0f} ms ({100 * now / (epoch_s + now):.1f} %); now/before {now / before:.2f}x "
          f"(medians over epochs; epoch without it {epoch_s:.2f} s)")
    for column, name in ((2, "running statistics"), (3, f"statistics recomputed over {args.batches} batches")):
        best = max(row[column] for row in rows)
        low = [row[0] for row in rows if row[column] < best / 2]
        print(f"{name}: best {100 * best:.1f}%, epochs below half of it: {low or 'none'}")


if __name__ == "__main__":
    main()

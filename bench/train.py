"""End-to-end speed: a real training epoch and validation pass of an experiment.

    python bench/train.py                                  # configs/GRUCell.yaml on the config's data.root
    python bench/train.py --config configs/OwnLSTM.yaml --profile   # + time shares per part of the model
    python bench/train.py --course-baseline                # + the course-style PNG-per-frame pipeline
    python bench/train.py --set train.channels_last=false
    python bench/train.py --recipe old= --recipe new=data.train_clips_per_video=8 [--seed 0]   # time to accuracy

Times ``--epochs`` epochs (training epoch plus validation pass) with the trainer's own
functions (src.training.loop: make_datasets, make_batches, train_one_epoch; src.training.trainer: prepare_model;
src.training.metrics.clip_logits) and prints clips/s and the share of the epoch spent waiting for data.

``--profile`` adds the share of the epoch in the encoder, the recurrent module and the
head (forward plus backward, from hooks: forward hooks time each part's forward; the
backward pass is cut at the parts' outputs by identity autograd nodes that note the time
the gradient reaches them); the rest is loss, optimizer step and bookkeeping.

``--course-baseline`` times, side by side on the same model and data, a Dataset that reads one PNG per
frame per item from the prepared tree in ``__getitem__`` and augments per clip (the way the course code
does), through a DataLoader (batch size and workers from the config); the ratio is the epoch speed-up of
the trainer's pipeline over it. (To compare with an older commit, run this script in a checkout of it.)

**Time to accuracy** (``--recipe NAME=OVERRIDES``, twice or more): each recipe, the config plus
``--set`` plus its own overrides (space-separated ``KEY=VALUE``, quoted as in a shell; empty: the config
as it is), trains a whole run with the trainer itself (:func:`src.training.trainer.train`, checkpoints
in a temporary folder) with seed ``--seed``. Per recipe: the wall time and epochs to first reach each
``--targets`` validation clip accuracy (default 85, 90, 95 %), and to the run's own plateau (the first
epoch within 0.5 points of its final, and of its best, validation accuracy); then each recipe against
the first (the ratio of those times). Wall time is the trainer's epoch times summed (training,
BatchNorm recomputation, validation; not the checkpoint writes and the setup).

Every timing is printed with the CPU (model, logical CPUs, native bf16), the threads, torch and the
precision. On a shared machine, run it alone (the README's numbers: ``flock -x /tmp/cpu.lock``).
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from src.checks import load_checked_config  # noqa: E402
from src.data.augment import get_train_transforms  # noqa: E402
from src.data.index import resolve_data_root  # noqa: E402
from src.nets.classifier import build_model  # noqa: E402
from src.training.device import cpu_description, select_device, training_precision  # noqa: E402
from src.training.loop import (  # noqa: E402
    make_batches,
    make_datasets,
    recompute_batchnorm_statistics,
    train_one_epoch,
)
from src.training.metrics import clip_logits, first_epoch_reaching  # noqa: E402
from src.training.trainer import make_optimizer, make_scheduler, prepare_model, seed_everything, train  # noqa: E402


class TimeMark(torch.autograd.Function):
    """Identity; its backward notes when the gradient reaches this point in ``marks[key]``."""

    @staticmethod
    def forward(ctx, x, marks, key):
        ctx.marks, ctx.key = marks, key
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.marks[ctx.key] = time.perf_counter()
        return grad, None, None


class PartTimes:
    """Seconds in the encoder, the recurrent module and the head of an ActionClassifier,
    forward plus backward, summed over every step while installed (see the module docstring)."""

    def __init__(self, model: torch.nn.Module):
        self.seconds = {"encoder": 0.0, "recurrent module": 0.0, "head": 0.0}
        self.marks: dict[str, float] = {}
        self.handles = []
        starts = {}

        def pre(name):
            def hook(module, args):
                starts[name] = time.perf_counter()
            return hook

        def post(name, key):
            def hook(module, args, output):
                now = time.perf_counter()
                self.marks[f"{name}_end"] = now
                if name != "model":
                    self.seconds[name] += now - starts[name]
                first = output[0] if isinstance(output, tuple) else output
                if torch.is_grad_enabled() and first.requires_grad:
                    first = TimeMark.apply(first, self.marks, key)
                return (first, *output[1:]) if isinstance(output, tuple) else first
            return hook

        def model_end(module, args, output):
            self.seconds["head"] += time.perf_counter() - self.marks["recurrent module_end"]
            return post("model", "logits")(module, args, output)

        def backward_done(param):
            marks = self.marks
            if {"logits", "rnn_out", "enc_out"} <= marks.keys():
                now = time.perf_counter()
                self.seconds["head"] += marks["rnn_out"] - marks["logits"]
                self.seconds["recurrent module"] += marks["enc_out"] - marks["rnn_out"]
                self.seconds["encoder"] += now - marks["enc_out"]
            for key in ("logits", "rnn_out", "enc_out"):
                marks.pop(key, None)

        for name, module, key in (("encoder", model.encoder, "enc_out"), ("recurrent module", model.rnn, "rnn_out")):
            self.handles += [module.register_forward_pre_hook(pre(name)), module.register_forward_hook(post(name, key))]
        self.handles.append(model.register_forward_hook(model_end))
        first_weight = next(model.encoder.parameters())  # the first layer: its gradient comes last
        self.handles.append(first_weight.register_post_accumulate_grad_hook(backward_done))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def time_epochs(config: dict, model, train_source, val_source, device, epochs: int, train_clips: int,
                val_clips: int) -> list[dict]:
    """Train ``epochs`` epochs from ``train_source`` and validate on ``val_source`` (ClipBatches or
    DataLoaders) with the trainer's functions; per epoch: epoch_s, train_s, wait_s and the clip counts."""
    optimizer = make_optimizer(model, config["train"])
    scheduler = make_scheduler(optimizer, config["train"], len(train_source))
    precision = training_precision(config["train"]["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16")
    bn_batches = config["train"]["precise_bn_batches"]
    rows = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        metrics = train_one_epoch(model, train_source, optimizer, scheduler, scaler, device, config, epoch,
                                  precision=precision, keep_last=bn_batches)
        if bn_batches:  # the trainer's BatchNorm statistics before validation
            recompute_batchnorm_statistics(model, metrics["last_clips"], bn_batches, precision)
        train_s = time.perf_counter() - start
        _, _, val_wait = clip_logits(model, val_source, device, precision)
        rows.append({"epoch_s": time.perf_counter() - start, "train_s": train_s,
                     "wait_s": metrics["data_wait_s"] + val_wait, "train_clips": train_clips, "val_clips": val_clips})
    return rows


def run_epochs(config: dict, data_root: Path, epochs: int, profile: bool) -> tuple[list[dict], dict]:
    """Time ``epochs`` epochs of this checkout's trainer: per epoch epoch_s, train_s, wait_s, clips."""
    seed_everything(config["train"]["seed"])
    device = select_device(config["train"]["device"])
    train_set, val_set = make_datasets(config, data_root)
    train_batches, val_batches = make_batches(config, train_set, val_set, device)
    model = prepare_model(build_model(config["model"], len(train_set.classes), train_set.channels), config["train"],
                          device)
    parts = PartTimes(model) if profile else None
    rows = time_epochs(config, model, train_batches, val_batches, device, epochs, len(train_set), len(val_set))
    shares = {}
    if parts is not None:
        parts.remove()
        total = sum(row["epoch_s"] for row in rows)
        shares = {"data": sum(row["wait_s"] for row in rows) / total,
                  **{name: seconds / total for name, seconds in parts.seconds.items()}}
        shares["rest (loss, optimizer, bookkeeping)"] = 1.0 - sum(shares.values())
    return rows, shares


class CoursePNGClips(Dataset):
    """The course's way: every item reads its clip's frames as PNGs from the prepared tree
    (``root/<action>/<video_id>/image-0001.png``) and augments it alone, as the config's ``augment``
    section (``augment``; None: not augmented) says. The clips (random starts in the subsequences,
    or the fixed windows) are those of ``dataset``'s clip table."""

    def __init__(self, dataset, augment: dict | None):
        self.dataset = dataset
        self.augment = get_train_transforms(**augment) if augment is not None else None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        d = self.dataset
        video_index, indices = d.clip_table.frame_indices(torch.tensor([index]))
        video_index, indices = int(video_index[0]), indices[0].tolist()
        video = d.videos[video_index]
        folder = d.root_dir / video["action"] / video["video_id"]
        frames = np.stack([np.asarray(Image.open(folder / f"image-{i + 1:04d}.png").convert("L")) for i in indices])
        clip = torch.from_numpy(frames).unsqueeze(1).float().div(255)  # (T, 1, H, W)
        if self.augment is not None:
            clip = self.augment(clip)
        return clip, d.labels[video_index]


def run_course_baseline(config: dict, data_root: Path, epochs: int) -> list[dict]:
    """Time ``epochs`` epochs of the same model fed by :class:`CoursePNGClips` through DataLoaders."""
    seed_everything(config["train"]["seed"])
    device = select_device(config["train"]["device"])
    train_set, val_set = make_datasets(config, data_root)
    batch_size, workers = config["train"]["batch_size"], config["data"]["num_workers"]
    train_loader = DataLoader(CoursePNGClips(train_set, augment=config["augment"]), batch_size, shuffle=True,
                              num_workers=workers)
    val_loader = DataLoader(CoursePNGClips(val_set, augment=None), batch_size, num_workers=workers)
    model = prepare_model(build_model(config["model"], len(train_set.classes), train_set.channels), config["train"],
                          device)
    return time_epochs(config, model, train_loader, val_loader, device, epochs, len(train_set), len(val_set))


def summary(rows: list[dict]) -> dict:
    """Median epoch time, clips/s (training and validation clips), data-wait share."""
    epoch_s = statistics.median(row["epoch_s"] for row in rows)
    clips = rows[0]["train_clips"] + rows[0]["val_clips"]
    return {"epoch_s": epoch_s, "train_s": statistics.median(row["train_s"] for row in rows),
            "clips_per_s": clips / epoch_s,
            "data_share": sum(row["wait_s"] for row in rows) / sum(row["epoch_s"] for row in rows),
            "spread": (min(row["epoch_s"] for row in rows), max(row["epoch_s"] for row in rows))}


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """``'new=data.train_clips_per_video=8 train.epochs=20'`` -> ``('new', [overrides])``."""
    name, sep, overrides = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--recipe {text!r}: expected NAME=OVERRIDES, like new=data.train_clips_per_video=8 "
                         f"(OVERRIDES may be empty: old=)")
    try:
        return name.strip(), shlex.split(overrides)
    except ValueError as e:
        raise ValueError(f"--recipe {text!r}: {e} (quote the overrides as in a shell)") from None


def first_reaching(history: list[dict], level: float) -> tuple[int, float] | None:
    """``(epoch, wall seconds up to its end)`` of the first epoch whose validation clip accuracy is
    at least ``level`` (a fraction), or None. Wall seconds: the epochs' ``epoch_time_s`` summed."""
    epoch = first_epoch_reaching(history, level)
    if epoch is None:
        return None
    return epoch, sum(row["epoch_time_s"] for row in history if row["epoch"] <= epoch)


def time_to_accuracy(history: list[dict], targets: list[float]) -> dict:
    """A run's time to each target (percent), to its plateau (the first epoch within 0.5 points of
    its final, and of its best, validation accuracy) and its totals, from its per-epoch history."""
    final, best = history[-1]["val_accuracy"], max(row["val_accuracy"] for row in history)
    return {"targets": {target: first_reaching(history, target / 100) for target in targets},
            "plateau (final)": first_reaching(history, final - 0.005),
            "plateau (best)": first_reaching(history, best - 0.005),
            "final": final, "best": best, "epochs": len(history),
            "total_s": sum(row["epoch_time_s"] for row in history)}


def recipe_configs(config_path: str, base: list[str], recipes: list[tuple[str, list[str]]],
                   seed: int | None) -> list[dict]:
    """Every recipe's config (``config_path`` + ``base`` + its overrides + the seed), all checked
    before anything trains; ConfigError names the recipe's override."""
    extra = [f"train.seed={seed}"] if seed is not None else []
    return [load_checked_config(config_path, [*base, *overrides, *extra], name=f"{Path(config_path).stem}_{name}")
            for name, overrides in recipes]


def run_recipes(recipes: list[tuple[str, list[str]]], configs: list[dict], config_path: str, data_root: Path,
                targets: list[float]) -> None:
    """Train every recipe (the trainer itself, into a temporary folder) and print its time to accuracy,
    and every recipe's times against the first recipe's."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as out:
        for (name, overrides), config in zip(recipes, configs):
            config["log"].update(models_dir=f"{out}/models", tboard_dir=f"{out}/tboard")
            train(config, data_root=data_root)
            history = torch.load(Path(out) / "models" / config["experiment"] / "last.pth")["metrics"]["history"]
            precision = training_precision(config["train"]["amp"], select_device(config["train"]["device"]))
            results[name] = {**time_to_accuracy(history, targets), "overrides": overrides, "precision": precision,
                             "seed": config["train"]["seed"]}

    def cell(reached):
        return "-" if reached is None else f"{reached[1]:.1f} s (ep {reached[0]})"

    keys = [*(f"{t:g} %" for t in targets), "plateau (final)", "plateau (best)"]
    print(f"\ntime to validation clip accuracy: {config_path} on {data_root}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {cpu_description()}")
    print(f"{'recipe':<10}{'precision':>10}{'seed':>6}{'epochs':>7}{'s/epoch':>9}{'best %':>8}{'final %':>9}"
          + "".join(f"{key:>18}" for key in keys) + "  overrides")
    for name, r in results.items():
        reached = [*(r["targets"][t] for t in targets), r["plateau (final)"], r["plateau (best)"]]
        print(f"{name:<10}{r['precision']:>10}{r['seed']:>6}{r['epochs']:>7}{r['total_s'] / r['epochs']:>9.2f}"
              f"{100 * r['best']:>8.1f}{100 * r['final']:>9.1f}" + "".join(f"{cell(x):>18}" for x in reached)
              + f"  {' '.join(r['overrides']) or '(the config)'}")
    print("wall time: the trainer's epoch times summed (training, BatchNorm recomputation, validation); "
          "plateau: the first epoch within 0.5 points of the run's final (best) validation accuracy")
    (reference, old), *others = results.items()
    for name, r in others:
        ratios = []
        for key, new_reached, old_reached in zip(
                keys, [*(r["targets"][t] for t in targets), r["plateau (final)"], r["plateau (best)"]],
                [*(old["targets"][t] for t in targets), old["plateau (final)"], old["plateau (best)"]]):
            ratio = f"{new_reached[1] / old_reached[1]:.2f}x" if new_reached and old_reached else "-"
            ratios.append(f"{key} {ratio}")
        plateau = r["plateau (final)"]
        print(f"{name}/{reference} wall time: " + ", ".join(ratios)
              + f"; {name}'s plateau (final) / {reference}'s whole run: "
              + (f"{plateau[1]:.1f} / {old['total_s']:.1f} s = {plateau[1] / old['total_s']:.2f}x" if plateau else "-"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/train.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/GRUCell.yaml", help="experiment YAML")
    parser.add_argument("--data", default=None, help="prepared dataset (default: the config's data.root)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="config overrides for this checkout's run, e.g. train.channels_last=false")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per pipeline (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--profile", action="store_true", help="share of time per part of the model")
    parser.add_argument("--course-baseline", action="store_true", help="also time the PNG-per-frame pipeline")
    parser.add_argument("--recipe", action="append", default=[], metavar="NAME=OVERRIDES",
                        help="time to accuracy of this recipe (twice or more; the first is the reference), e.g. "
                             "old= new='data.train_clips_per_video=8'")
    parser.add_argument("--seed", type=int, default=None, help="train.seed of every recipe (default: the config's)")
    parser.add_argument("--targets", type=float, nargs="+", default=[85.0, 90.0, 95.0], metavar="PERCENT",
                        help="validation clip accuracies to time (default: 85 90 95)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        config = load_checked_config(args.config, args.set)
        recipes = [parse_recipe(text) for text in args.recipe]
        if len(recipes) == 1 or len({name for name, _ in recipes}) < len(recipes):
            raise ValueError(f"--recipe: give two or more recipes with distinct names, got {args.recipe}")
        data_root, synthetic = resolve_data_root(args.data or config["data"]["root"],
                                                 preset=config["data"]["synthetic_preset"])
        data_root = Path(data_root).resolve()
        configs = recipe_configs(args.config, args.set, recipes, args.seed)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    if recipes:
        return run_recipes(recipes, configs, args.config, data_root, args.targets)
    if args.profile and (config["train"]["compile"] or config["model"]["arch"] != "rnn"):
        print("note: --profile needs an uncompiled encoder -> RNN -> head model; profiling skipped", file=sys.stderr)
        args.profile = False

    print(f"{config['experiment']} on {data_root}{' (synthetic twin)' if synthetic else ''}; "
          f"torch {torch.__version__}, {args.threads} threads, {cpu_description()}, "
          f"{args.epochs} timed epoch(s) each, "
          f"{training_precision(config['train']['amp'], select_device(config['train']['device']))}")
    results = {}
    rows, shares = run_epochs(config, data_root, args.epochs, args.profile)
    results["now"] = summary(rows)
    if args.course_baseline:
        results["course PNG per frame"] = summary(run_course_baseline(config, data_root, args.epochs))

    train_clips, val_clips = rows[0]["train_clips"], rows[0]["val_clips"]
    print(f"one epoch = {train_clips} training clips + {val_clips} validation clips; "
          f"batch {config['train']['batch_size']}")
    print(f"{'pipeline':<26}{'epoch s':>9}{'train s':>9}{'clips/s':>9}{'data wait':>11}{'epoch ratio':>13}")
    now = results["now"]["epoch_s"]
    for name, r in results.items():
        print(f"{name:<26}{r['epoch_s']:>9.2f}{r['train_s']:>9.2f}{r['clips_per_s']:>9.0f}"
              f"{100 * r['data_share']:>10.1f}%{r['epoch_s'] / now:>12.2f}x")
    print("epoch ratio: that pipeline's epoch time / now's (> 1: now is faster)")
    if shares:
        print("time shares of the epoch (now): " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items()))


if __name__ == "__main__":
    main()

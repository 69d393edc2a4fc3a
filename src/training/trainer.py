"""The training loop: :func:`train` trains one experiment; the pieces it is made of are here too,
for the benchmarks (bench/) and the tests.

    summary = train(load_config("configs/GRUCell.yaml"))    # the command line: python -m src.train

Trains on the training split, selects the model on the validation split (never the
test split; which groups each holds: the config's data.split, src/data/splits.py) and writes

- ``models/<experiment>/last.pth`` after every epoch and ``best.pth`` (the epoch of best validation
  clip accuracy; with ``train.select: last`` the last epoch), see src/training/checkpoint.py;
- TensorBoard events under ``tboard_logs/<experiment>/``: loss, accuracy, learning rate,
  per-class validation accuracy, a confusion matrix, epoch time and data-wait share per
  epoch; hparams with the final metrics at the end.

While it trains, the process holds both folders, ``models/<experiment>/run.lock`` and
``tboard_logs/<experiment>/run.lock`` (src/training/runlock.py): a second training of the same run is
refused at once, in one line naming the process that holds it; the lock of a process that died
(kill -9) is taken over. A checkpoint that cannot be written (disk full) ends the run in one line,
the previous one kept.

The recipe's options (configs/base.yaml, all off by default): ``train.label_smoothing`` smooths the
training loss's targets (F.cross_entropy's ``label_smoothing``); ``train.ema_decay`` keeps an exponential
moving average of the weights (:func:`make_averaged_model`), updated after every optimizer step, and that
average, its BatchNorm statistics recomputed, is what is validated each epoch, selected and saved as the
checkpoints' ``model_state_dict`` (the trained weights go on in the checkpoints' ``ema``, for resuming).

``resume=True`` continues from last.pth (model, optimizer, scheduler, scaler, history and
every RNG state, so the DataLoader's shuffle too; the weight average too): on CPU, a resumed run ends with
exactly the metrics of an uninterrupted one.

Under ``torchrun`` (see src/training/distributed.py) the same call trains with
DistributedDataParallel: ``train.batch_size`` stays the global batch, each rank takes its share
of the clips, validation metrics are all-reduced, and rank 0 alone writes checkpoints and events.

The pieces: :func:`make_datasets` and :func:`make_batches` (the data of a run), :func:`prepare_model`,
:func:`make_optimizer`, :func:`make_scheduler`, :func:`make_averaged_model`, :func:`train_one_epoch`,
:func:`recompute_batchnorm_statistics` (PreciseBN) and :func:`seed_everything`.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import math
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from torch.utils.tensorboard import SummaryWriter

from src.config import OPTIMIZERS, SCHEDULERS, ConfigError
from src.data.augment import ClipBatchAugmentation
from src.data.batches import ClipBatches
from src.data.dataset import VideoClipDataset
from src.data.index import resolve_data_root
from src.files import remove_temp_files
from src.nets.classifier import ActionClassifier, build_model, count_parameters
from src.progress import tqdm
from src.training import distributed
from src.training.checkpoint import (
    CheckpointWriteError,
    get_rng_states,
    load_checkpoint,
    save_checkpoint,
    set_rng_states,
)
from src.training.device import autocast, machine_description, select_device, training_precision
from src.training.metrics import classification_metrics, clip_logits, clip_video_index, summarize_history, timed
from src.training.provenance import code_version, describe_data, resume_refusal, split_record
from src.training.runlock import LOCK_NAME, LockFolderError, holding


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf; the message names the epoch and step."""


class ResumeRefusedError(ValueError):
    """last.pth was made on other data or with another model architecture; the message says what to do."""


class EventWriteError(OSError):
    """The TensorBoard events could not be written (disk full, no permission); the message names the
    folder and the epoch last.pth keeps."""


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python's random."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def make_datasets(config: dict, data_root: Path) -> tuple[VideoClipDataset, VideoClipDataset]:
    """The training split (random clips) and the validation split (evenly spaced clips), as the
    config's ``data`` section says (its split protocol: src.data.splits; a split that cannot train or be
    measured is refused here, before training); neither has a per-item transform: the training clips
    are augmented a batch at once (:func:`make_batches`, the ``augment`` section)."""
    data = config["data"]
    common = dict(max_frames=data["max_frames"], slicing_step=data["slicing_step"],
                  img_size=(data["img_size"], data["img_size"]), use_sequences=data["use_sequences"],
                  protocol=data, channels=data["channels"])
    train_set = VideoClipDataset(data_root, split="train", clips_per_video=data["train_clips_per_video"],
                                 random_clips=True, **common)
    val_set = VideoClipDataset(data_root, split="val", clips_per_video=data["eval_clips_per_video"], **common)
    return train_set, val_set


def make_batches(config: dict, train_set: VideoClipDataset, val_set: VideoClipDataset, device: torch.device,
                 rank: int = 0, world_size: int = 1, val_items=None) -> tuple[ClipBatches, ClipBatches]:
    """The trainer's batch sources: random training clips augmented as the config's ``augment``
    section says (:class:`ClipBatchAugmentation`), in a new order each epoch
    (``set_epoch``), this rank's share of ``train.batch_size`` clips per step; the validation
    clips ``val_items`` (default all) in order, batches of ``train.batch_size / world_size``.
    Frames live on ``device`` when they fit."""
    batch_size, seed = config["train"]["batch_size"], config["train"]["seed"]
    train_batches = ClipBatches(train_set, batch_size, augmentation=ClipBatchAugmentation(**config["augment"]),
                                shuffle=True, device=device, rank=rank, world_size=world_size, seed=seed,
                                prefetch=config["data"]["prefetch"])
    val_batches = ClipBatches(val_set, batch_size // world_size, shuffle=False, device=device, items=val_items)
    return train_batches, val_batches


def prepare_model(model: torch.nn.Module, train_config: dict, device: torch.device) -> torch.nn.Module:
    """The model on ``device``, its convolution weights channels-last (``train.channels_last``:
    channels_last for 2-D, channels_last_3d for 3-D convolutions; 1.3-1.4x faster training steps
    on CPU for both the encoder and R(2+1)D) and compiled in place (``train.compile``; the
    state_dict keeps its keys)."""
    model = model.to(device)
    if train_config["channels_last"]:
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
            elif isinstance(module, torch.nn.Conv3d):
                module.to(memory_format=torch.channels_last_3d)
    if train_config["compile"]:
        model.compile()
    return model


def make_optimizer(model: torch.nn.Module, train_config: dict) -> torch.optim.Optimizer:
    name, lr, wd = train_config["optimizer"], train_config["lr"], train_config["weight_decay"]
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd, nesterov=True)
    raise ConfigError(f"train.optimizer: unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def make_scheduler(optimizer: torch.optim.Optimizer, train_config: dict, steps_per_epoch: int):
    """A per-step learning-rate schedule, or None.

    ``cosine``: linear warm-up over ``warmup_epochs``, then cosine decay to 0 over the rest
    of the run. ``step``: x0.1 after each third of the run (the course's schedule; it leaves
    the last third with a tiny learning rate).
    """
    name = train_config["scheduler"]
    total_steps = train_config["epochs"] * steps_per_epoch
    if name == "none":
        return None
    if name == "cosine":
        warmup_steps = min(train_config["warmup_epochs"] * steps_per_epoch, total_steps - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
        if warmup_steps <= 0:
            return cosine
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup_steps, total_iters=warmup_steps)
        return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, total_steps // 3), gamma=0.1)
    raise ConfigError(f"train.scheduler: unknown scheduler {name!r}; use one of {', '.join(SCHEDULERS)}")


def make_averaged_model(model: torch.nn.Module, train_config: dict) -> AveragedModel | None:
    """The exponential moving average of ``model``'s weights that ``train.ema_decay`` asks for, or None when it is 0:
    torch's AveragedModel over the parameters and the buffers (``use_buffers``), each update
    ``average = decay * average + (1 - decay) * weights`` (the first one copies the weights). Its ``module`` is the
    averaged network, validated and saved by the trainer; ``update_parameters(model)`` after every optimizer step
    (:func:`train_one_epoch`'s ``averaged``)."""
    decay = train_config["ema_decay"]
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def batchnorm_part(model: torch.nn.Module) -> tuple[torch.nn.Module, bool]:
    """``(part, frames)``: the smallest part of ``model`` that holds every BatchNorm layer, and whether
    it takes the clips' frames (B*T, C, H, W) rather than the clips: an ActionClassifier's encoder
    (arch rnn: its recurrent module and head have none), else the whole model on the clips."""
    def norms(module):
        return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())

    if isinstance(model, ActionClassifier) and norms(model.encoder) == norms(model):
        return model.encoder, True
    return model, False


def recompute_batchnorm_statistics(model: torch.nn.Module, batches, num_batches: int,
                                   precision: str = "float32") -> None:
    """PreciseBN: set every BatchNorm's running mean and variance to their average over the first
    ``num_batches`` batches of ``batches`` (clips (B, T, C, H, W), or ``(clips, labels, ...)`` as the
    trainer's loaders yield them), under the model's current weights and in ``precision``
    (:func:`src.training.device.autocast`); the model's train/eval mode is kept.

    Only the part of the model that holds BatchNorm layers runs (:func:`batchnorm_part`): for arch rnn
    the encoder on the clips' frames, the statistics identical to a whole-model forward in train mode.
    The trainer passes the clips of the epoch's last training batches (``train_one_epoch``'s
    ``last_clips``), so no batch is made again.

    BatchNorm's running statistics average roughly the last ten steps' batches, each taken with
    that step's weights. Under a constant Adam step the weights move so fast that the average no
    longer fits the final ones, and evaluation collapsed (30 % where recomputed statistics give
    69 %, see the notebook and ``bench/batchnorm_statistics.py``). The trainer calls this with the
    epoch's final weights before every validation (``train.precise_bn_batches``)."""
    part, frames = batchnorm_part(model)
    batches = itertools.islice(batches, num_batches)
    clips = (batch[0] if isinstance(batch, (list, tuple)) else batch for batch in batches)
    inputs = (c.flatten(0, 1) for c in clips) if frames else clips
    device = next(model.parameters()).device
    with torch.no_grad(), autocast(device, precision):
        update_bn(inputs, part)


def train_one_epoch(model, loader, optimizer, scheduler, scaler, device, config, epoch,
                    context: distributed.Context = distributed.Context(), precision: str | None = None,
                    keep_last: int = 0, averaged: AveragedModel | None = None) -> dict:
    """One pass over the training clips (``loader``: a :class:`ClipBatches` or a DataLoader).
    Returns ``{'loss', 'accuracy', 'steps', 'data_wait_s', 'last_clips'}``; under DDP (``context``) loss and
    accuracy are over every rank's clips, data_wait_s is this rank's; ``steps``: the optimizer steps taken;
    ``last_clips``: the clips (B, T, C, H, W) of the epoch's last ``keep_last`` batches, oldest first (for
    :func:`recompute_batchnorm_statistics`). The loss is the cross-entropy with ``train.label_smoothing``;
    ``averaged`` (:func:`make_averaged_model`), when given, is updated with the model after every optimizer step.
    Runs in ``precision`` (:func:`src.training.device.autocast`;
    default: float16 when the scaler is enabled, else float32); bfloat16 works on CPU.

    Raises NonFiniteLossError on a NaN/inf loss, before the optimizer step.
    """
    model.train()
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    if precision is None:
        precision = "float16" if scaler.is_enabled() else "float32"
    last_clips = collections.deque(maxlen=keep_last)
    grad_clip = config["train"]["grad_clip"]
    loss_sum, correct, seen, data_wait, step = 0.0, 0, 0, 0.0, 0
    bar = tqdm(timed(loader), total=len(loader), desc=f"epoch {epoch} train", leave=False, dynamic_ncols=True)
    for step, ((clips, labels), wait) in enumerate(bar, 1):
        data_wait += wait
        clips, labels = clips.to(device, non_blocking=True), labels.to(device, non_blocking=True)  # (B,T,C,H,W), (B,)
        with autocast(device, precision):
            logits = model(clips)  # (B, num_classes)
            loss = F.cross_entropy(logits, labels, label_smoothing=config["train"]["label_smoothing"])
        # .item() waits for the device to finish the step (a sync every step); we need the
        # value anyway, to stop on NaN/inf before the optimizer step spoils the weights.
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(f"loss is {loss_value} at epoch {epoch}, step {step}/{len(loader)}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip > 0:
            # With AMP the gradients are still multiplied by the loss scale: unscale them first, or
            # the clipping threshold would apply to scaled norms. step() then knows not to unscale again.
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        if averaged is not None:
            averaged.update_parameters(model)
        loss_sum += loss_value * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        last_clips.append(clips)
    loss_sum, correct, seen = distributed.all_reduce_sums(context, loss_sum, correct, seen)
    return {"loss": loss_sum / seen, "accuracy": correct / seen, "steps": step, "data_wait_s": data_wait,
            "last_clips": list(last_clips)}


def make_loaders(config: dict, train_set, val_set, context: distributed.Context, pin: bool = False):
    """``(train_loader, val_loader, val_indices)``: the batches of this process (:func:`make_batches`).

    In one process: every clip, batches of ``train.batch_size``, training clips shuffled.
    Under DDP, rank r of W gets batches of ``train.batch_size / W`` from its share: the
    training clips as a DistributedSampler splits them (shuffled per epoch with ``train.seed``;
    ``set_epoch`` is called by :func:`train_one_epoch`), the validation clips r, r + W, r + 2W, ...
    (no padding, so every clip counts once). ``val_indices`` (n,) says which validation clips
    this rank has. ``pin`` is unused: the batches are made on the device.
    """
    batch_size = config["train"]["batch_size"]
    if batch_size % context.world_size:
        raise ConfigError(f"train.batch_size: {batch_size} is the global batch and must be divisible by the "
                          f"{context.world_size} processes; set it to a multiple of {context.world_size}")
    val_indices = torch.arange(context.rank, len(val_set), context.world_size)
    train_loader, val_loader = make_batches(config, train_set, val_set, context.device, context.rank,
                                            context.world_size, val_items=val_indices.tolist())
    return train_loader, val_loader, val_indices


def log_epoch(writer: SummaryWriter, row: dict, val_metrics: dict, class_names: list[str]) -> None:
    """One epoch's scalars and confusion-matrix figure, at step ``row['epoch']``; ``class_names``
    (the dataset's classes) name the per-class accuracies and the matrix's rows and columns."""
    from src.plots import confusion_matrix_figure

    step = row["epoch"]
    for tag, key in [("loss/train", "train_loss"), ("loss/val", "val_loss"),
                     ("accuracy/train", "train_accuracy"), ("accuracy/val", "val_accuracy"),
                     ("accuracy/val_video", "val_video_accuracy"), ("lr", "lr"),
                     ("time/epoch_s", "epoch_time_s"), ("time/data_wait_share", "data_wait_share")]:
        writer.add_scalar(tag, row[key], step)
    for name, accuracy in zip(class_names, row["val_per_class_accuracy"], strict=True):
        writer.add_scalar(f"val_class_accuracy/{name}", accuracy, step)
    writer.add_figure("confusion_matrix/val", confusion_matrix_figure(
        val_metrics["confusion_matrix"], class_names, title=f"validation, epoch {step}"), step)
    writer.flush()


def flat_hparams(config: dict) -> dict:
    """The config as ``{'train.lr': 0.001, ...}`` with TensorBoard-friendly values."""
    flat = {}
    for section, values in config.items():
        if isinstance(values, dict):
            for key, value in values.items():
                flat[f"{section}.{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat


@contextlib.contextmanager
def run_claimed(config: dict):
    """Hold the run's folders for the block: ``<log.models_dir>/<experiment>/run.lock`` and
    ``<log.tboard_dir>/<experiment>/run.lock`` (src/training/runlock.py), so no other process trains this run
    or writes its events meanwhile. Re-entrant: the suite's process already holds the first.

    Raises:
        RunClaimedError: another live process holds one of them; one line names the folder, the
            process (pid, host), the lock file and what to do.
        LockFolderError: a folder cannot be made or written; one line names the config key.
    """
    name = config["experiment"]
    with contextlib.ExitStack() as stack:
        for key in ("models_dir", "tboard_dir"):
            lock = Path(config["log"][key]) / name / LOCK_NAME
            what_to_do = (f"wait for that run to finish, train under another name with --name NEW_NAME, or delete "
                          f"{lock} if that process is gone")
            try:
                stack.enter_context(holding(lock, what_to_do))
            except LockFolderError as e:
                raise LockFolderError(f"log.{key}: {e}; set log.{key} to a folder you can write") from None
        yield


def train(config: dict, data_root: str | Path | None = None, resume: bool = False) -> dict:
    """Train the experiment ``config`` (from :func:`src.config.load_config`).

    Args:
        config: the full config, with ``config['experiment']`` naming the run.
        data_root: a prepared dataset folder; default ``config['data']['root']`` (``auto``:
            real KTH in data/kth, else the synthetic twin).
        resume: continue from ``models/<experiment>/last.pth`` when it exists.

    Returns:
        The summary: best_val_accuracy, best_val_video_accuracy, best_epoch (of the epoch best.pth holds:
        the best validation epoch, or the last one with ``train.select: last``), epochs,
        time_per_epoch_s, data_wait_share, time_to_best_s, total_time_s, plus the
        checkpoint paths, the device, ``select`` (train.select) and ``ema_decay`` (train.ema_decay;
        0: the weights validated and saved are the trained ones, else their average).

    The run's folders are claimed for the whole training (:func:`run_claimed`; under torchrun by
    rank 0), before any data is generated or read.

    Raises:
        NonFiniteLossError: the loss became NaN/inf; ``last.pth`` keeps the last good epoch.
        RunClaimedError: another live process trains this run (same models or TensorBoard folder).
        LockFolderError: ``log.models_dir`` or ``log.tboard_dir`` cannot be made or written.
        CheckpointWriteError: a checkpoint could not be written (disk full, no permission);
            the previous one is kept.
    """
    context = distributed.setup(select_device(config["train"]["device"]))  # one process unless torchrun
    try:
        with run_claimed(config) if context.is_main else contextlib.nullcontext():
            return _train(config, context, data_root, resume)
    finally:
        distributed.teardown(context)


def _train(config: dict, context: distributed.Context, data_root, resume: bool) -> dict:
    name, train_config = config["experiment"], config["train"]
    run_dir = Path(config["log"]["models_dir"]) / name
    last_path, best_path = run_dir / "last.pth", run_dir / "best.pth"
    device, main = context.device, context.is_main
    precision = training_precision(train_config["amp"], device)  # float32 | bfloat16 | float16
    if main:  # this process holds the run folder: a temp file there is a killed writer's
        remove_temp_files(run_dir, "*.pth")

    seed_everything(train_config["seed"])
    if not main:
        distributed.barrier(context)  # rank 0 alone makes the synthetic twin when needed
    data_root, synthetic = resolve_data_root(data_root or config["data"]["root"],
                                             preset=config["data"]["synthetic_preset"])
    if main:
        distributed.barrier(context)
    data = describe_data(data_root, preset=config["data"]["synthetic_preset"] if synthetic else None)
    train_set, val_set = make_datasets(config, data_root)
    train_loader, val_loader, val_indices = make_loaders(config, train_set, val_set, context, device.type == "cuda")
    val_video_index = clip_video_index(val_set)

    resuming = resume and last_path.is_file()
    classes, channels = list(train_set.classes), train_set.channels  # the model's outputs and input channels
    model = build_model(config["model"], num_classes=len(classes), in_channels=channels,
                        load_pretrained=not resuming)  # resuming: weights from last.pth
    model = prepare_model(model, train_config, device)
    optimizer = make_optimizer(model, train_config)
    scheduler = make_scheduler(optimizer, train_config, len(train_loader))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16")

    start_epoch, history, best = 0, [], {"val_accuracy": -1.0, "val_video_accuracy": -1.0, "epoch": 0}
    if resuming:
        checkpoint = load_checkpoint(last_path, map_location=device)
        refusal = resume_refusal(checkpoint, config, data, last_path)
        if refusal:
            raise ResumeRefusedError(f"{name}: cannot resume: {refusal}; start a new run with --name NEW_NAME, "
                                     f"or delete {run_dir} to train it again")
        # with train.ema_decay, model_state_dict holds the average (what was validated), "ema" the trained weights
        model.load_state_dict((checkpoint.get("ema") or {}).get("trained_state_dict")
                              or checkpoint["model_state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
        scaler.load_state_dict(checkpoint["scaler_state_dict"])
        start_epoch = checkpoint["epoch"]
        history, best = checkpoint["metrics"]["history"], checkpoint["metrics"]["best"]
        set_rng_states(checkpoint["rng_states"])
        changed = sorted(key for key, value in flat_hparams(checkpoint["config"]).items()  # train.select: which
                         if not key.startswith("log.") and key != "train.select"  # epoch is kept, not training
                         and flat_hparams(config).get(key) != value)
        if changed and main:
            warnings.warn(f"{name}: resuming {last_path} with a changed config ({', '.join(changed)}); the optimizer "
                          f"and learning-rate schedule continue as saved", stacklevel=2)
        if main:
            print(f"{name}: resuming from {last_path} after epoch {start_epoch}", file=sys.stderr)
    elif resume and main:
        print(f"{name}: no {last_path} yet; starting from scratch", file=sys.stderr)
    model, trained = distributed.wrap_model(model, context, train_config["sync_batchnorm"])  # trained: DDP
    averaged = make_averaged_model(model, train_config)  # None unless train.ema_decay
    if averaged is not None and resuming and checkpoint.get("ema"):
        averaged.module.load_state_dict(checkpoint["model_state_dict"])
        averaged.n_averaged.fill_(checkpoint["ema"]["updates"])
    evaluated = model if averaged is None else averaged.module  # validated each epoch, and saved as the run's weights
    select = train_config["select"]

    num_params = count_parameters(model)
    if main:
        ranks = (f" x {context.world_size} processes (DDP, {train_config['batch_size'] // context.world_size} "
                 f"clips per rank and step{', SyncBatchNorm' if train_config['sync_batchnorm'] else ''})"
                 if context.distributed else "")
        recipe = "".join([f"; validating an average of the weights (EMA, decay {train_config['ema_decay']:g})"
                          if averaged is not None else "",
                          "; best.pth: the last epoch (train.select last)" if select == "last" else ""])
        print(f"{name}: {num_params:,} trainable parameters on {device}{ranks}, {precision}; "
              f"{len(train_set)} train clips, {len(val_set)} val clips from {data_root}"
              f"{' (synthetic twin)' if synthetic else ''}{recipe}", file=sys.stderr)

    # purge_step drops events of an interrupted run's unfinished epochs, so a resumed run
    # appends cleanly to the same TensorBoard run. Under DDP rank 0 alone writes.
    writer = SummaryWriter(Path(config["log"]["tboard_dir"]) / name, purge_step=start_epoch + 1) if main else None

    provenance = {"data": data, "classes": train_set.classes, **split_record({"train": train_set, "val": val_set}),
                  "code_version": code_version(), "amp": precision != "float32", "precision": precision,
                  "device": str(device), "machine": machine_description(device)}

    def checkpoint_now(epoch: int) -> dict:
        return {
            "model_state_dict": evaluated.state_dict(),
            "ema": None if averaged is None else {"decay": train_config["ema_decay"],
                                                  "updates": int(averaged.n_averaged),
                                                  "trained_state_dict": model.state_dict()},
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else None,
            "scaler_state_dict": scaler.state_dict(),
            "epoch": epoch,
            "config": config,
            "metrics": {"history": history, "best": best},
            "rng_states": get_rng_states(),
            "data_root": str(data_root),
            "synthetic": synthetic,
            "provenance": provenance,
            "classes": classes,
            "channels": channels,
        }

    def validate(epoch: int) -> tuple[dict, float]:
        """The metrics of ``evaluated`` on the validation split (every rank's share gathered) and the data wait."""
        logits, labels, wait = clip_logits(evaluated, val_loader, device, precision, desc=f"epoch {epoch} val")
        logits = distributed.all_reduce_rows(context, logits, val_indices, len(val_set))
        labels = distributed.all_reduce_rows(context, labels, val_indices, len(val_set))
        return classification_metrics(logits, labels, val_video_index, num_classes=len(classes)), wait

    def best_record(row: dict, val_metrics: dict) -> dict:
        return {"epoch": row["epoch"], "val_accuracy": row["val_accuracy"],
                "val_video_accuracy": row["val_video_accuracy"],
                "val_per_class_accuracy": row["val_per_class_accuracy"],
                "val_confusion_matrix": val_metrics["confusion_matrix"]}

    epochs = train_config["epochs"]
    try:
        for epoch in tqdm(range(start_epoch + 1, epochs + 1), initial=start_epoch, total=epochs,
                          desc=name, dynamic_ncols=True):
            epoch_start = time.perf_counter()
            if context.distributed:  # each rank's shuffle and random stream depend on the epoch alone
                train_loader.sampler.set_epoch(epoch)
                torch.manual_seed(distributed.epoch_seed(train_config["seed"], epoch, context.rank))
            lr = optimizer.param_groups[0]["lr"]  # read before the epoch: the scheduler steps per batch, so
            # this is the rate the epoch started with (the one TensorBoard's "lr" shows at this epoch)
            train_metrics = train_one_epoch(trained, train_loader, optimizer, scheduler, scaler, device, config, epoch,
                                            context, precision, keep_last=train_config["precise_bn_batches"],
                                            averaged=averaged)
            if train_config["precise_bn_batches"]:  # statistics that fit the epoch's final (or averaged) weights
                recompute_batchnorm_statistics(evaluated, train_metrics.pop("last_clips"),
                                               train_config["precise_bn_batches"], precision)
            val_metrics, val_wait = validate(epoch)
            epoch_time = time.perf_counter() - epoch_start
            data_wait = train_metrics["data_wait_s"] + val_wait
            row = {
                "epoch": epoch, "lr": lr, "steps": train_metrics["steps"],
                "train_loss": train_metrics["loss"], "train_accuracy": train_metrics["accuracy"],
                "val_loss": val_metrics["loss"], "val_accuracy": val_metrics["accuracy"],
                "val_video_accuracy": val_metrics["video_accuracy"],
                "val_per_class_accuracy": val_metrics["per_class_accuracy"],
                "epoch_time_s": epoch_time, "data_wait_s": data_wait, "data_wait_share": data_wait / epoch_time,
            }
            history.append(row)
            is_best = select == "last" or row["val_accuracy"] > best["val_accuracy"]  # best.pth is this epoch's
            if is_best:
                best = best_record(row, val_metrics)
            if not main:
                continue
            marked = is_best and select == "best"
            retry = "free some space (or fix the permissions), then continue with --resume"
            try:
                log_epoch(writer, row, val_metrics, classes)
            except OSError as e:  # raised again from tensorboard's writer thread
                kept = f"{last_path} keeps epoch {epoch - 1}" if epoch > 1 and last_path.is_file() else \
                    "no checkpoint was written"
                raise EventWriteError(f"{writer.log_dir}: could not write the TensorBoard events "
                                      f"({e.strerror or e}); {kept}; {retry}") from None
            state = checkpoint_now(epoch)
            try:
                if is_best:
                    save_checkpoint(state, best_path)
                save_checkpoint(state, last_path)
            except CheckpointWriteError as e:  # disk full, no permission: the previous checkpoint is kept
                raise CheckpointWriteError(f"{e}; {retry}") from None
            tqdm.write(f"{name} epoch {epoch}/{epochs}: "
                       f"train loss {row['train_loss']:.3f} acc {row['train_accuracy']:.3f} | "
                       f"val loss {row['val_loss']:.3f} acc {row['val_accuracy']:.3f} "
                       f"video {row['val_video_accuracy']:.3f} | {epoch_time:.1f} s, "
                       f"data wait {100 * row['data_wait_share']:.1f}%{' *best*' if marked else ''}", file=sys.stderr)
    except NonFiniteLossError as e:
        if writer is not None:
            writer.close()
        kept = f"{last_path} keeps epoch {start_epoch if not history else history[-1]['epoch']}" \
            if last_path.is_file() else "no checkpoint was written"
        raise NonFiniteLossError(f"{name}: {e}; stopped ({kept}). Try a lower train.lr "
                                 f"(now {train_config['lr']:g}), then --resume or start again") from None

    if not history:
        if writer is not None:
            writer.close()
        raise RuntimeError(f"{name}: train.epochs is {epochs}; nothing to train")
    if select == "last" and (best["epoch"] != history[-1]["epoch"] or not best_path.is_file()):
        # a finished run of train.select best resumed with last (or its last.pth alone, copied into a new run):
        # the last epoch's weights, now in `evaluated`, become best.pth, validated again for the confusion
        # matrix that the history does not keep
        val_metrics, _ = validate(history[-1]["epoch"])
        best = best_record(history[-1], val_metrics)
        if main:
            save_checkpoint(checkpoint_now(history[-1]["epoch"]), best_path)
            print(f"{name}: best.pth is now the last epoch's weights, epoch {best['epoch']} (train.select last)",
                  file=sys.stderr)
    summary = summarize_history(history, best)
    summary.update({"experiment": name, "best_checkpoint": str(best_path), "last_checkpoint": str(last_path),
                    "device": str(device), "num_params": num_params, "world_size": context.world_size,
                    "select": select, "ema_decay": train_config["ema_decay"]})
    if writer is None:
        return summary
    writer.add_hparams(flat_hparams(config),
                       {f"hparam/{key}": summary[key] for key in
                        ("best_val_accuracy", "best_val_video_accuracy", "best_epoch", "time_per_epoch_s",
                         "data_wait_share")},
                       run_name=".")
    writer.close()
    return summary

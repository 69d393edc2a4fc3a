"""Training: :func:`train` trains one experiment; the setup pieces it is made of are here too, for the
benchmarks (bench/) and the tests (the epoch loop is src/training/loop.py).

    summary = train(load_config("configs/GRUCell.yaml"))    # the command line: python -m src.train

Trains on the training split, selects the model on the validation split (never the
test split; which groups each holds: the config's data.split, src/data/splits.py) and writes

- ``models/<experiment>/last.pth`` after every epoch and ``best.pth`` (the epoch of best validation
  clip accuracy; with ``train.select: last`` the last epoch), see src/training/checkpoint.py;
- TensorBoard events under ``tboard_logs/<experiment>/``: loss, accuracy, learning rate,
  per-class validation accuracy, a confusion matrix, epoch time and data-wait share per
  epoch; hparams with the final metrics at the end.

It reports its progress through ``logging`` (logger ``src.training.trainer``, level INFO; src/train.py shows it
on stderr) and tqdm's progress bars.

While it trains, the process holds both folders, ``models/<experiment>/run.lock`` and
``tboard_logs/<experiment>/run.lock`` (src/training/runlock.py): a second training of the same run is
refused at once, in one line naming the process that holds it; the lock of a process that died
(kill -9) is taken over. A checkpoint that cannot be written (disk full) ends the run in one line,
the previous one kept.

The recipe's options (configs/base.yaml): ``train.label_smoothing`` smooths the
training loss's targets (F.cross_entropy's ``label_smoothing``); ``train.loss_on_every_step`` puts the loss on the
answer after every prefix of a clip (:func:`src.training.loop.training_loss`); ``train.ema_decay`` keeps an exponential
moving average of the weights (:func:`src.training.loop.make_averaged_model`), updated after every optimizer
step, and that average, its BatchNorm statistics recomputed, is what is validated each epoch, selected and saved
as the checkpoints' ``model_state_dict`` (the trained weights go on in the checkpoints' ``ema``, for resuming).

``resume=True`` continues from last.pth (model, optimizer, scheduler, scaler, history and
every RNG state, so the DataLoader's shuffle too; the weight average too): on CPU, a resumed run ends with
exactly the metrics of an uninterrupted one.

Under ``torchrun`` (see src/training/distributed.py) the same call trains with
DistributedDataParallel: ``train.batch_size`` stays the global batch, each rank takes its share
of the clips, validation metrics are all-reduced, and rank 0 alone writes checkpoints and events.

The setup pieces: :func:`seed_everything`, :func:`prepare_model`, :func:`make_optimizer`, :func:`make_scheduler`;
the steps of :func:`train`: :func:`load_data`, :func:`checkpoint_to_resume`, :func:`start_run`,
:func:`train_and_validate`, :func:`write_epoch` (:func:`log_epoch`, :func:`save_epoch_checkpoints`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.tensorboard import SummaryWriter

from src.config import OPTIMIZERS, SCHEDULERS, ConfigError
from src.data.batches import ClipBatches
from src.data.dataset import VideoClipDataset
from src.data.index import config_for_data, resolve_data_root
from src.files import remove_temp_files
from src.nets.classifier import build_model, count_parameters
from src.plots import confusion_matrix_figure
from src.progress import tqdm
from src.training import distributed
from src.training.checkpoint import (
    Checkpoint,
    CheckpointWriteError,
    ema_record,
    get_rng_states,
    load_checkpoint,
    save_checkpoint,
    set_rng_states,
)
from src.training.device import machine_description, select_device, training_precision
from src.training.loop import (
    NonFiniteLossError,
    make_averaged_model,
    make_datasets,
    make_loaders,
    recompute_batchnorm_statistics,
    train_one_epoch,
    validate,
)
from src.training.metrics import clip_video_index, summarize_history
from src.training.provenance import (
    code_version,
    config_differences,
    config_resume_refusal,
    describe_data,
    resume_refusal,
    split_record,
)
from src.training.runlock import LOCK_NAME, LockFolderError, holding

logger = logging.getLogger(__name__)

RESUME = "resume=True"
"""How this module's messages say "continue the run": :func:`train`'s argument (src/train.py says ``--resume``)."""
ANOTHER_NAME = "experiment=NEW_NAME"
"""How they say "train it under another name": the config's ``experiment`` (src/train.py says ``--name``)."""
RETRY = f"free some space (or fix the permissions), then continue with {RESUME}"
"""What to do after a checkpoint or the events could not be written."""


class ResumeRefusedError(ValueError):
    """last.pth was made on other data, or with another model architecture, optimizer or learning-rate schedule; the
    message says what to do."""


class EventWriteError(OSError):
    """The TensorBoard events could not be written (disk full, no permission); the message names the
    folder and the epoch last.pth keeps."""


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python's random."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


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


def log_epoch(writer: SummaryWriter, row: dict, val_metrics: dict, class_names: list[str]) -> None:
    """One epoch's scalars and confusion-matrix figure, at step ``row['epoch']``; ``class_names``
    (the dataset's classes) name the per-class accuracies and the matrix's rows and columns."""
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
def claimed_run_folder(config: dict):
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
            what_to_do = (f"wait for that run to finish, train it under another name ({ANOTHER_NAME}), or delete "
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

    The run's folders are claimed for the whole training (:func:`claimed_run_folder`; under torchrun by
    rank 0), before any data is generated or read.

    Raises:
        NonFiniteLossError: the loss became NaN/inf; ``last.pth`` keeps the last good epoch.
        ResumeRefusedError: last.pth was trained on other data or with another model architecture, optimizer or
            learning-rate schedule (refused before the data is read, but for other data).
        CheckpointReadError: last.pth is no checkpoint of src.train, or a damaged one (before the data is read).
        RunClaimedError: another live process trains this run (same models or TensorBoard folder).
        LockFolderError: ``log.models_dir`` or ``log.tboard_dir`` cannot be made or written.
        CheckpointWriteError: a checkpoint could not be written (disk full, no permission);
            the previous one is kept.
        EventWriteError: the TensorBoard events could not be written.
    """
    context = distributed.setup(select_device(config["train"]["device"]))  # one process unless torchrun
    try:
        with claimed_run_folder(config) if context.is_main else contextlib.nullcontext():
            return _train(config, context, data_root, resume)
    finally:
        distributed.teardown(context)


def _train(config: dict, context: distributed.Context, data_root, resume: bool) -> dict:
    """:func:`train` in its claimed folders: its steps, top to bottom."""
    name, main = config["experiment"], context.is_main
    if main:  # this process holds the run folder: a temp file there is a killed writer's
        remove_temp_files(run_folder(config), "*.pth")
    checkpoint = checkpoint_to_resume(config, context) if resume else None  # refused before the data loads
    seed_everything(config["train"]["seed"])
    data = load_data(config, context, data_root)
    config = config_for_data(config, data.root)  # data.channels auto: the data's, recorded as the number
    if checkpoint is not None:  # trained on other data: refused once that data is known
        refuse_to_resume(config, resume_refusal(checkpoint, config, data.description, run_folder(config) / "last.pth"))
    run = start_run(config, context, data, checkpoint)  # the network, what trains it, the epochs done
    if main:
        logger.info(describe_start(run))
    # purge_step drops events of an interrupted run's unfinished epochs, so a resumed run
    # appends cleanly to the same TensorBoard run. Under DDP rank 0 alone writes.
    writer = SummaryWriter(Path(config["log"]["tboard_dir"]) / name, purge_step=run.start_epoch + 1) if main else None
    epochs = config["train"]["epochs"]
    try:
        for epoch in tqdm(range(run.start_epoch + 1, epochs + 1), initial=run.start_epoch, total=epochs,
                          desc=name, dynamic_ncols=True):
            row, val_metrics = train_and_validate(run, epoch)
            is_best = run.record(row, val_metrics)
            if main:
                write_epoch(run, writer, row, val_metrics, is_best)
    except NonFiniteLossError as e:
        if writer is not None:
            writer.close()
        raise stopped_by(run, e) from None
    if not run.history:
        if writer is not None:
            writer.close()
        raise RuntimeError(f"{name}: train.epochs is {epochs}; nothing to train")
    if run.select == "last" and (run.best["epoch"] != run.history[-1]["epoch"] or not run.best_path.is_file()):
        keep_the_last_epoch_as_best(run)
    summary = run_summary(run)
    if writer is not None:
        write_hparams(writer, config, summary)
        writer.close()
    return summary


def run_folder(config: dict) -> Path:
    """``<log.models_dir>/<experiment>``: where the run's checkpoints go."""
    return Path(config["log"]["models_dir"]) / config["experiment"]


@dataclasses.dataclass
class RunData:
    """The data of a run: the prepared dataset it trains on and this process's batches of it."""

    root: Path
    synthetic: bool
    description: dict
    """:func:`src.training.provenance.describe_data` of ``root``: its fingerprint, source, channels."""
    train_set: VideoClipDataset
    val_set: VideoClipDataset
    train_loader: ClipBatches
    val_loader: ClipBatches
    val_indices: torch.Tensor
    """(n,): which validation clips this rank has (:func:`src.training.loop.make_loaders`)."""
    val_video_index: torch.Tensor
    """(N,): the video of each validation clip."""

    @property
    def classes(self) -> list[str]:
        """The class names, label i being ``classes[i]``: the model's outputs."""
        return list(self.train_set.classes)


def load_data(config: dict, context: distributed.Context, data_root) -> RunData:
    """The prepared dataset at ``data_root`` (default the config's ``data.root``; ``auto`` may generate the
    synthetic twin, rank 0 alone under DDP), its training and validation splits and this process's batches."""
    preset = config["data"]["synthetic_preset"]
    if not context.is_main:
        distributed.barrier(context)  # rank 0 alone makes the synthetic twin when needed
    root, synthetic = resolve_data_root(data_root or config["data"]["root"], preset=preset)
    if context.is_main:
        distributed.barrier(context)
    train_set, val_set = make_datasets(config, root)
    train_loader, val_loader, val_indices = make_loaders(config, train_set, val_set, context)
    return RunData(root, synthetic, describe_data(root, preset=preset if synthetic else None), train_set, val_set,
                   train_loader, val_loader, val_indices, clip_video_index(val_set))


def checkpoint_to_resume(config: dict, context: distributed.Context) -> dict | None:
    """The run's last.pth to continue from, or None when there is none yet (the run starts from scratch); read and
    checked against ``config`` before any data is read (a damaged or foreign file, another architecture,
    optimizer or schedule: :func:`src.training.provenance.config_resume_refusal`).

    Raises:
        CheckpointReadError: last.pth is no checkpoint of src.train, or a damaged one.
        ResumeRefusedError: last.pth was trained with another model architecture, optimizer or schedule.
    """
    name, last_path = config["experiment"], run_folder(config) / "last.pth"
    if not last_path.is_file():
        if context.is_main:
            logger.info(f"{name}: no {last_path} yet; starting from scratch")
        return None
    checkpoint = load_checkpoint(last_path, map_location=context.device)
    refuse_to_resume(config, config_resume_refusal(checkpoint, config, last_path))
    return checkpoint


def refuse_to_resume(config: dict, refusal: str | None) -> None:
    """Raise ResumeRefusedError saying ``refusal`` (why the run's last.pth cannot continue) and what to do;
    nothing when ``refusal`` is None."""
    if refusal:
        raise ResumeRefusedError(f"{config['experiment']}: cannot resume: {refusal}; start a new run under another "
                                 f"name ({ANOTHER_NAME}), or delete {run_folder(config)} to train it again")


NO_BEST = {"val_accuracy": -1.0, "val_video_accuracy": -1.0, "epoch": 0}
"""The best epoch of a run that has trained none."""


@dataclasses.dataclass
class Run:
    """One training as its steps share it: the config, this process, the data, the network and what trains
    it, and the epochs done so far (:func:`start_run`)."""

    config: dict
    context: distributed.Context
    precision: str
    """float32 | bfloat16 | float16 (train.amp on this device)."""
    data: RunData
    model: torch.nn.Module
    """The network: its state_dict is the trained weights."""
    trained: torch.nn.Module
    """What the optimizer steps run: the model, or its DistributedDataParallel wrapper."""
    averaged: AveragedModel | None
    """The weight average under train.ema_decay, else None."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    provenance: dict
    """What made the run (src/training/provenance.py), as its checkpoints record it."""
    start_epoch: int = 0
    """Epochs done before this process started (resumed from last.pth)."""
    history: list[dict] = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=lambda: dict(NO_BEST))

    @property
    def evaluated(self) -> torch.nn.Module:
        """The network validated each epoch and saved as the run's weights: the average, or the model itself."""
        return self.model if self.averaged is None else self.averaged.module

    @property
    def select(self) -> str:
        return self.config["train"]["select"]

    @property
    def last_path(self) -> Path:
        return run_folder(self.config) / "last.pth"

    @property
    def best_path(self) -> Path:
        return run_folder(self.config) / "best.pth"

    def validate(self, epoch: int) -> tuple[dict, float]:
        """The metrics of :attr:`evaluated` on the validation split (every rank's share gathered) and the data
        wait (:func:`src.training.loop.validate`)."""
        data = self.data
        return validate(self.evaluated, data.val_loader, data.val_indices, data.val_set, data.val_video_index,
                        self.context, self.precision, epoch)

    def record(self, row: dict, val_metrics: dict) -> bool:
        """Add the epoch ``row`` to the history; whether best.pth is to hold it (train.select)."""
        self.history.append(row)
        is_best = self.select == "last" or row["val_accuracy"] > self.best["val_accuracy"]
        if is_best:
            self.best = best_record(row, val_metrics)
        return is_best


def start_run(config: dict, context: distributed.Context, data: RunData, checkpoint: dict | None) -> Run:
    """The network of the run on this process's device (its initial weights, or those of ``checkpoint``, the
    last.pth to resume), its optimizer, learning-rate schedule, gradient scaler and weight average, each as
    ``checkpoint`` left it, the epochs it did, and every RNG's state after them."""
    train_config, device = config["train"], context.device
    precision = training_precision(train_config["amp"], device)  # float32 | bfloat16 | float16
    model = build_model(config["model"], num_classes=len(data.classes), in_channels=data.train_set.channels,
                        load_pretrained=checkpoint is None)  # resuming: weights from last.pth
    model = prepare_model(model, train_config, device)
    optimizer = make_optimizer(model, train_config)
    scheduler = make_scheduler(optimizer, train_config, len(data.train_loader))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16")
    done = {}
    if checkpoint is not None:
        # with train.ema_decay, model_state_dict holds the average (what was validated), "ema" the trained weights
        model.load_state_dict((checkpoint["ema"] or {}).get("trained_state_dict") or checkpoint["model_state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
        scaler.load_state_dict(checkpoint["scaler_state_dict"])
        done = {"start_epoch": checkpoint["epoch"], "history": checkpoint["metrics"]["history"],
                "best": checkpoint["metrics"]["best"]}
        set_rng_states(checkpoint["rng_states"])
        if context.is_main:
            report_resuming(config, checkpoint, precision)
    model, trained = distributed.wrap_model(model, context, train_config["sync_batchnorm"])  # trained: DDP
    averaged = make_averaged_model(model, train_config)  # None unless train.ema_decay
    if averaged is not None and checkpoint is not None and checkpoint["ema"]:
        averaged.module.load_state_dict(checkpoint["model_state_dict"])
        averaged.n_averaged.fill_(checkpoint["ema"]["updates"])
    provenance = {"data": data.description, "classes": data.train_set.classes,
                  **split_record({"train": data.train_set, "val": data.val_set}), "code_version": code_version(),
                  "amp": precision != "float32", "precision": precision, "device": str(device),
                  "machine": machine_description(device)}
    return Run(config, context, precision, data, model, trained, averaged, optimizer, scheduler, scaler, provenance,
               **done)


def report_resuming(config: dict, checkpoint: dict, precision: str) -> None:
    """Log which last.pth the run continues, after which epoch; warn of what changed in the config since
    (:func:`src.training.provenance.config_differences`; ``train.select`` says which epoch is kept, not how to
    train) and of another precision."""
    name, last_path = config["experiment"], run_folder(config) / "last.pth"
    changed = config_differences(checkpoint["config"], config, ignore=("train.select",))
    saved_precision = checkpoint["provenance"]["precision"]
    if saved_precision != precision:
        changed.append(f"precision: {saved_precision} -> {precision}")
    if changed:
        warnings.warn(f"{name}: resuming {last_path} with a changed config ({'; '.join(changed)}); the optimizer "
                      f"and learning-rate schedule continue as saved", stacklevel=3)
    logger.info(f"{name}: resuming from {last_path} after epoch {checkpoint['epoch']}")


def describe_start(run: Run) -> str:
    """``'GRUCell: 1,234 trainable parameters on cpu, float32; 120 train clips, 40 val clips from data/synth
    (synthetic twin)'``, with the DDP processes and the recipe's options when they are on."""
    train_config, context, data = run.config["train"], run.context, run.data
    ranks = (f" x {context.world_size} processes (DDP, {train_config['batch_size'] // context.world_size} "
             f"clips per rank and step{', SyncBatchNorm' if train_config['sync_batchnorm'] else ''})"
             if context.distributed else "")
    recipe = "".join([f"; validating an average of the weights (EMA, decay {train_config['ema_decay']:g})"
                      if run.averaged is not None else "",
                      "; best.pth: the last epoch (train.select last)" if run.select == "last" else ""])
    return (f"{run.config['experiment']}: {count_parameters(run.model):,} trainable parameters on {context.device}"
            f"{ranks}, {run.precision}; {len(data.train_set)} train clips, {len(data.val_set)} val clips from "
            f"{data.root}{' (synthetic twin)' if data.synthetic else ''}{recipe}")


def train_and_validate(run: Run, epoch: int) -> tuple[dict, dict]:
    """Train ``epoch`` (:func:`src.training.loop.train_one_epoch`), recompute the BatchNorm statistics of the
    network validated (``train.precise_bn_batches``) and validate it. Returns ``(row, val_metrics)``: the
    history's row of the epoch and the validation metrics (with the confusion matrix)."""
    train_config, context = run.config["train"], run.context
    epoch_start = time.perf_counter()
    if context.distributed:  # each rank's random stream depends on the epoch alone (its shuffle too: set_epoch)
        torch.manual_seed(distributed.epoch_seed(train_config["seed"], epoch, context.rank))
    lr = run.optimizer.param_groups[0]["lr"]  # read before the epoch: the scheduler steps per batch, so
    # this is the rate the epoch started with (the one TensorBoard's "lr" shows at this epoch)
    train_metrics = train_one_epoch(run.trained, run.data.train_loader, run.optimizer, run.scheduler, run.scaler,
                                    context.device, run.config, epoch, context, run.precision,
                                    keep_last=train_config["precise_bn_batches"], averaged=run.averaged)
    if train_config["precise_bn_batches"]:  # statistics that fit the epoch's final (or averaged) weights
        recompute_batchnorm_statistics(run.evaluated, train_metrics["last_clips"], train_config["precise_bn_batches"],
                                       run.precision)
    val_metrics, val_wait = run.validate(epoch)
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
    return row, val_metrics


def best_record(row: dict, val_metrics: dict) -> dict:
    """The metrics' ``best`` of a checkpoint: the epoch ``row``'s accuracies and its confusion matrix."""
    return {"epoch": row["epoch"], "val_accuracy": row["val_accuracy"],
            "val_video_accuracy": row["val_video_accuracy"],
            "val_per_class_accuracy": row["val_per_class_accuracy"],
            "val_confusion_matrix": val_metrics["confusion_matrix"]}


def write_epoch(run: Run, writer: SummaryWriter, row: dict, val_metrics: dict, is_best: bool) -> None:
    """Rank 0's record of the epoch ``row``: its TensorBoard events (:func:`log_epoch`), last.pth (and best.pth
    when ``is_best``), and one line of the epoch's metrics.

    Raises:
        EventWriteError: the events could not be written; the message names the epoch last.pth keeps.
        CheckpointWriteError: a checkpoint could not be written; the previous one is kept.
    """
    name, epoch, epochs = run.config["experiment"], row["epoch"], run.config["train"]["epochs"]
    try:
        log_epoch(writer, row, val_metrics, run.data.classes)
    except OSError as e:  # raised again from tensorboard's writer thread
        kept = f"{run.last_path} keeps epoch {epoch - 1}" if epoch > 1 and run.last_path.is_file() else \
            "no checkpoint was written"
        raise EventWriteError(f"{writer.log_dir}: could not write the TensorBoard events "
                              f"({e.strerror or e}); {kept}; {RETRY}") from None
    save_epoch_checkpoints(run, epoch, is_best)
    marked = is_best and run.select == "best"
    logger.info(f"{name} epoch {epoch}/{epochs}: "
                f"train loss {row['train_loss']:.3f} acc {row['train_accuracy']:.3f} | "
                f"val loss {row['val_loss']:.3f} acc {row['val_accuracy']:.3f} "
                f"video {row['val_video_accuracy']:.3f} | {row['epoch_time_s']:.1f} s, "
                f"data wait {100 * row['data_wait_share']:.1f}%{' *best*' if marked else ''}")


def save_epoch_checkpoints(run: Run, epoch: int, is_best: bool) -> None:
    """last.pth after ``epoch``, and best.pth first when ``is_best``: :func:`checkpoint_of` the run.

    Raises:
        CheckpointWriteError: disk full, no permission: the previous checkpoint is kept, the message says so
            and what to do.
    """
    state = checkpoint_of(run, epoch)
    try:
        if is_best:
            save_checkpoint(state, run.best_path)
        save_checkpoint(state, run.last_path)
    except CheckpointWriteError as e:
        raise CheckpointWriteError(f"{e}; {RETRY}") from None


def checkpoint_of(run: Run, epoch: int) -> dict:
    """The run after ``epoch`` as a checkpoint (:class:`src.training.checkpoint.Checkpoint`)."""
    train_config = run.config["train"]
    ema = None if run.averaged is None else ema_record(train_config["ema_decay"], int(run.averaged.n_averaged),
                                                       run.model.state_dict())
    return Checkpoint(
        model_state_dict=run.evaluated.state_dict(), ema=ema,
        optimizer_state_dict=run.optimizer.state_dict(),
        scheduler_state_dict=run.scheduler.state_dict() if run.scheduler is not None else None,
        scaler_state_dict=run.scaler.state_dict(), epoch=epoch, config=run.config,
        metrics={"history": run.history, "best": run.best}, rng_states=get_rng_states(),
        data_root=str(run.data.root), synthetic=run.data.synthetic, provenance=run.provenance,
        classes=run.data.classes, channels=run.data.train_set.channels,
    ).as_dict()


def stopped_by(run: Run, error: NonFiniteLossError) -> NonFiniteLossError:
    """The one-line error of a run that ``error`` (the loss became NaN/inf) stopped: the epoch last.pth keeps,
    and what to try."""
    done = run.history[-1]["epoch"] if run.history else run.start_epoch
    kept = f"{run.last_path} keeps epoch {done}" if run.last_path.is_file() else "no checkpoint was written"
    return NonFiniteLossError(f"{run.config['experiment']}: {error}; stopped ({kept}). Try a lower train.lr "
                              f"(now {run.config['train']['lr']:g}), then continue with {RESUME} or start again")


def keep_the_last_epoch_as_best(run: Run) -> None:
    """train.select last where best.pth does not hold the last epoch (a finished run of train.select best resumed
    with last, or its last.pth alone, copied into a new run): the last epoch's weights, now in the run's network,
    become best.pth, validated again for the confusion matrix that the history does not keep."""
    last = run.history[-1]
    val_metrics, _ = run.validate(last["epoch"])
    run.best = best_record(last, val_metrics)
    if run.context.is_main:
        save_checkpoint(checkpoint_of(run, last["epoch"]), run.best_path)
        logger.info(f"{run.config['experiment']}: best.pth is now the last epoch's weights, epoch {last['epoch']} "
                    f"(train.select last)")


def run_summary(run: Run) -> dict:
    """What :func:`train` returns: :func:`src.training.metrics.summarize_history` and where the run went."""
    summary = summarize_history(run.history, run.best)
    summary.update({"experiment": run.config["experiment"], "best_checkpoint": str(run.best_path),
                    "last_checkpoint": str(run.last_path), "device": str(run.context.device),
                    "num_params": count_parameters(run.model), "world_size": run.context.world_size,
                    "select": run.select, "ema_decay": run.config["train"]["ema_decay"]})
    return summary


def write_hparams(writer: SummaryWriter, config: dict, summary: dict) -> None:
    """The run's hyperparameters (:func:`flat_hparams`) with its final metrics, in TensorBoard's hparams tab."""
    writer.add_hparams(flat_hparams(config),
                       {f"hparam/{key}": summary[key] for key in
                        ("best_val_accuracy", "best_val_video_accuracy", "best_epoch", "time_per_epoch_s",
                         "data_wait_share")},
                       run_name=".")

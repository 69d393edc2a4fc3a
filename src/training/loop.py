"""The epoch loop: what it iterates over, one pass of optimizer steps, and what follows each pass.

- :func:`dataset_from_config`: the split of a prepared dataset that a config's ``data`` section describes
  (the trainer's training and validation splits, src.evaluate's test split); :func:`make_datasets`, the
  trainer's pair; :func:`make_batches` and :func:`make_loaders`, their batches (this rank's share under DDP);
- :func:`train_one_epoch`: one pass over the training clips, the loss (:func:`training_loss`: the cross-entropy
  of the clip's answer, or of every prefix's with ``train.loss_on_every_step``), gradient clipping, AMP, the per-step
  learning-rate schedule and the weight average;
- :func:`make_averaged_model`: the exponential moving average of the weights (``train.ema_decay``);
- :func:`recompute_batchnorm_statistics` (PreciseBN, on :func:`batchnorm_part`): BatchNorm statistics that
  fit the epoch's final weights, before every validation;
- :func:`validate`: the validation metrics, every rank's share gathered.
"""
from __future__ import annotations

import collections
import itertools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from src.config import ConfigError
from src.data.augment import ClipBatchAugmentation
from src.data.batches import ClipBatches
from src.data.dataset import VideoClipDataset
from src.nets.classifier import ActionClassifier
from src.progress import tqdm
from src.training import distributed
from src.training.device import autocast
from src.training.metrics import classification_metrics, clip_logits, timed


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf; the message names the epoch and step."""


def dataset_from_config(config: dict, data_root: str | Path, split: str) -> VideoClipDataset:
    """The clips of ``split`` (``'train'``, ``'val'`` or ``'test'``) of the prepared dataset at ``data_root``, as
    the config's ``data`` section says: its split protocol (src.data.splits; a split that cannot train or be
    measured is refused here), frames, size and channels. The training split gives ``data.train_clips_per_video``
    random clips per video, the others ``data.eval_clips_per_video`` evenly spaced ones. No per-item transform:
    the training clips are augmented a batch at once (:func:`make_batches`, the ``augment`` section)."""
    data = config["data"]
    training = split == "train"
    return VideoClipDataset(data_root, split=split, random_clips=training,
                            clips_per_video=data["train_clips_per_video" if training else "eval_clips_per_video"],
                            max_frames=data["max_frames"], slicing_step=data["slicing_step"],
                            img_size=(data["img_size"], data["img_size"]), use_sequences=data["use_sequences"],
                            protocol=data, channels=data["channels"])


def make_datasets(config: dict, data_root: str | Path) -> tuple[VideoClipDataset, VideoClipDataset]:
    """The trainer's training and validation splits (:func:`dataset_from_config`)."""
    return dataset_from_config(config, data_root, "train"), dataset_from_config(config, data_root, "val")


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


def make_loaders(config: dict, train_set, val_set, context: distributed.Context):
    """``(train_loader, val_loader, val_indices)``: the batches of this process (:func:`make_batches`).

    In one process: every clip, batches of ``train.batch_size``, training clips shuffled.
    Under DDP, rank r of W gets batches of ``train.batch_size / W`` from its share: the
    training clips as a DistributedSampler splits them (shuffled per epoch with ``train.seed``;
    ``set_epoch`` is called by :func:`train_one_epoch`), the validation clips r, r + W, r + 2W, ...
    (no padding, so every clip counts once). ``val_indices`` (n,) says which validation clips
    this rank has. The batches are made on the context's device.
    """
    batch_size = config["train"]["batch_size"]
    if batch_size % context.world_size:
        raise ConfigError(f"train.batch_size: {batch_size} is the global batch and must be divisible by the "
                          f"{context.world_size} processes; set it to a multiple of {context.world_size}")
    val_indices = torch.arange(context.rank, len(val_set), context.world_size)
    train_loader, val_loader = make_batches(config, train_set, val_set, context.device, context.rank,
                                            context.world_size, val_items=val_indices.tolist())
    return train_loader, val_loader, val_indices


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
    """One pass over the training clips (``loader``: a :class:`ClipBatches`, whose ``set_epoch(epoch)`` this
    calls, or a DataLoader).
    Returns ``{'loss', 'accuracy', 'steps', 'data_wait_s', 'last_clips'}``; under DDP (``context``) loss and
    accuracy are over every rank's clips, data_wait_s is this rank's; ``steps``: the optimizer steps taken;
    ``last_clips``: the clips (B, T, C, H, W) of the epoch's last ``keep_last`` batches, oldest first (for
    :func:`recompute_batchnorm_statistics`). The loss is :func:`training_loss`'s;
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
    loss_sum, correct, seen, data_wait, step = 0.0, 0, 0, 0.0, 0
    bar = tqdm(timed(loader), total=len(loader), desc=f"epoch {epoch} train", leave=False, dynamic_ncols=True)
    for step, ((clips, labels), wait) in enumerate(bar, 1):
        data_wait += wait
        clips, labels = clips.to(device, non_blocking=True), labels.to(device, non_blocking=True)  # (B,T,C,H,W), (B,)
        with autocast(device, precision):
            logits, loss = training_loss(model, clips, labels, config["train"])  # (B, num_classes), a scalar
        # .item() waits for the device to finish the step (a sync every step); we need the
        # value anyway, to stop on NaN/inf before the optimizer step spoils the weights.
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(f"loss is {loss_value} at epoch {epoch}, step {step}/{len(loader)}")
        optimizer_step(loss, model, optimizer, scheduler, scaler, config["train"]["grad_clip"], averaged)
        loss_sum += loss_value * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        last_clips.append(clips)
    loss_sum, correct, seen = distributed.all_reduce_sums(context, loss_sum, correct, seen)
    return {"loss": loss_sum / seen, "accuracy": correct / seen, "steps": step, "data_wait_s": data_wait,
            "last_clips": list(last_clips)}


def training_loss(model, clips: torch.Tensor, labels: torch.Tensor, train: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips' logits (B, num_classes) and the training loss: the cross-entropy with ``train.label_smoothing`` of
    the clip's answer, or with ``train.loss_on_every_step`` the mean of that of every prefix's answer (after 1, 2,
    ..., T frames: what a stream answers as the clip arrives, :meth:`ActionClassifier.forward`'s ``every_step``).

    Args:
        model: the model being trained (DDP or compiled wrappers pass ``every_step`` through).
        clips: (B, T, C, H, W); labels: int64 (B,).
        train: the config's ``train:`` section.
    """
    smoothing = train["label_smoothing"]
    if not train["loss_on_every_step"]:
        logits = model(clips)  # (B, num_classes)
        return logits, F.cross_entropy(logits, labels, label_smoothing=smoothing)
    steps = model(clips, every_step=True)  # (B, T, num_classes)
    loss = F.cross_entropy(steps.flatten(0, 1), labels.repeat_interleave(steps.shape[1]), label_smoothing=smoothing)
    return steps[:, -1], loss


def optimizer_step(loss: torch.Tensor, model, optimizer, scheduler, scaler, grad_clip: float,
                   averaged: AveragedModel | None) -> None:
    """Back-propagate ``loss`` (a scalar, scaled by ``scaler`` under float16), clip the gradients' norm to
    ``grad_clip`` (0: no clipping), step the optimizer, the per-step schedule and the weight average."""
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


def validate(model: torch.nn.Module, val_loader, val_indices: torch.Tensor, val_set, video_index: torch.Tensor,
             context: distributed.Context, precision: str, epoch: int) -> tuple[dict, float]:
    """``(metrics, data_wait_s)``: :func:`src.training.metrics.classification_metrics` of ``model`` on the
    validation clips of ``val_set``, this rank's share (``val_loader``, the clips ``val_indices`` (n,)) gathered
    from every rank; ``video_index`` (N,) gives each clip's video. ``data_wait_s``: this rank's wait for data."""
    logits, labels, wait = clip_logits(model, val_loader, context.device, precision, desc=f"epoch {epoch} val")
    logits = distributed.all_reduce_rows(context, logits, val_indices, len(val_set))  # (N, num_classes)
    labels = distributed.all_reduce_rows(context, labels, val_indices, len(val_set))  # (N,)
    return classification_metrics(logits, labels, video_index, num_classes=len(val_set.classes)), wait

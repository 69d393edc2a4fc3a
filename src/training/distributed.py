"""Data-parallel training with ``torch.distributed``: the plumbing the trainer uses under ``torchrun``.

    torchrun --standalone --nproc_per_node=2 -m src.train --config configs/GRUCell.yaml

``torchrun`` starts one process per GPU (or per CPU share) and gives each its ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in the environment. Without those variables every function
here is the identity of one process, so ``python -m src.train`` is the single-process trainer.

- :func:`setup` / :func:`teardown`: the process group (nccl on CUDA, gloo on CPU) with a
  timeout, so that no rank waits for ever on a peer that died;
- :func:`wrap_model`: SyncBatchNorm (optional) and DistributedDataParallel;
- :class:`GlooSyncBatchNorm`: PyTorch's SyncBatchNorm runs on GPUs only (and DDP refuses it on
  CPU); this is the same computation for CPU tensors, with the differentiable all-reduce of
  ``torch.distributed._functional_collectives``;
- :func:`all_reduce_sums`, :func:`all_reduce_rows`: per-rank sums and per-rank validation
  logits combined into what one process would have computed;
- :func:`epoch_seed`: every rank's random stream per epoch, so a resumed run draws the same
  augmentations as an uninterrupted one;
- :func:`silence_progress_bars`: only rank 0 draws tqdm bars.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol  # differentiable collectives
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

# A collective that waits longer than this raises on every rank instead of hanging. Rank 0 may
# generate the synthetic twin (about 4 minutes on 2 cores) while the others wait at a barrier.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world_size`` processes, its ``device``."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # setup() made the process group, so teardown() ends it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and events and prints."""
        return self.rank == 0

    def describe(self) -> str:
        """``'rank 1 of 2'`` under torchrun, ``''`` in one process."""
        return f"rank {self.rank} of {self.world_size}" if self.distributed else ""


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another env:// launcher) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: torch.device) -> Context:
    """Join the process group when launched by torchrun; else the context of one process.

    Args:
        device: the device the config asks for (``src.training.device.select_device``); under torchrun
            on CUDA each process takes GPU ``LOCAL_RANK``.

    Returns:
        The :class:`Context`. Backend: nccl on CUDA, gloo otherwise.
    """
    if not launched_by_torchrun():
        return Context(device=device)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=PROCESS_GROUP_TIMEOUT,
                                **({"device_id": device} if device.type == "cuda" else {}))
    context = Context(rank=rank, world_size=world_size, local_rank=local_rank, device=device, owns_group=owns_group)
    if not context.is_main:
        silence_progress_bars()
    return context


def teardown(context: Context) -> None:
    """Leave the process group if :func:`setup` made it (a caller's own group stays)."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def silence_progress_bars() -> None:
    """Make every later ``tqdm(...)`` of this process disabled, ``tqdm.auto``'s too (tqdm reads
    its ``TQDM_*`` environment only at import, so the default is set on the base class)."""
    import tqdm
    tqdm.std.tqdm.__init__ = functools.partialmethod(tqdm.std.tqdm.__init__, disable=True)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of rank ``rank``'s random stream (augmentations, dropout) in ``epoch``.

    Under DDP each rank reseeds at the start of every epoch, so the stream depends on
    ``(seed, epoch, rank)`` only and ``--resume`` needs no per-rank RNG state.
    """
    return (seed * 1_000_003 + epoch) * 1_009 + rank


class GlooSyncBatchNorm(_BatchNorm):
    """What :class:`torch.nn.SyncBatchNorm` computes, for CPU tensors (gloo).

    In training mode the mean and the (biased) variance are taken over the global batch,
    all ranks together, in two all-reduces of per-channel sums; the functional all-reduce
    (``torch.distributed._functional_collectives``) carries the gradients back to every rank, as SyncBatchNorm's
    backward does. Running statistics are updated with the unbiased variance, as
    ``F.batch_norm`` does. Evaluation and one process are plain BatchNorm. Its state_dict is a
    BatchNorm's. Under autocast (bfloat16 on a CPU with native bf16) it computes in float32, as
    ``F.batch_norm`` does with a low-precision input and float32 statistics, and returns the input's dtype.

    Input: (N, C, *) with any number of trailing dimensions; output: the same shape and dtype.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"GlooSyncBatchNorm: expected at least 2D input (N, C, *), got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = dist.group.WORLD
        if not self.training or not dist.is_initialized() or dist.get_world_size(group) == 1:
            return super().forward(x)
        self._check_input_dim(x)
        dtype, x = x.dtype, x.float()  # bfloat16 sums over N x H x W would lose the statistics (and lerp_ refuses)
        dims = [0, *range(2, x.dim())]
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        local = torch.cat([x.sum(dims), x.new_tensor([x.numel() // x.shape[1]])])  # (C + 1,): sums, count
        total = funcol.all_reduce(local, "sum", group)
        count, mean = total[-1], total[:-1] / total[-1]  # (), (C,)
        centred = x - mean.view(shape)
        var = funcol.all_reduce(centred.square().sum(dims), "sum", group) / count  # (C,) biased
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked.item()
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1).clamp(min=1), momentum)
        return y.to(dtype)


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Every BatchNorm*d of ``model`` as SyncBatchNorm on GPUs, GlooSyncBatchNorm elsewhere.

    The state_dict keys do not change, so checkpoints load into the plain model."""
    if device.type != "cpu":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.__class__ = GlooSyncBatchNorm  # the same parameters and buffers; only forward differs
    return model


def wrap_model(model: torch.nn.Module, context: Context, sync_batchnorm: bool) -> tuple[torch.nn.Module,
                                                                                          torch.nn.Module]:
    """``(model, trained)``: the model itself (its state_dict is what checkpoints hold) and
    the module to train, DistributedDataParallel under torchrun, else the model itself.

    Call after the weights are loaded: DDP copies rank 0's parameters and buffers to every rank.
    """
    if not context.distributed:
        return model, model
    if sync_batchnorm:
        model = convert_sync_batchnorm(model, context.device)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return model, DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sums(context: Context, *values: float) -> list[float]:
    """Per-rank sums (loss sum, correct count, seen count...) summed over every rank."""
    if not context.distributed:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(total)
    return total.tolist()


def all_reduce_rows(context: Context, rows: torch.Tensor, indices: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Every rank's rows of a (num_rows, ...) table, put together.

    Args:
        rows: (n, ...) this rank's rows (e.g. validation logits), on the CPU.
        indices: (n,) which rows of the table they are; the ranks' indices are disjoint and
            together cover the table.
        num_rows: the table's length.

    Returns:
        (num_rows, ...) on the CPU, the same on every rank, bit for bit what one process
        holds: each entry is one rank's value plus zeros.
    """
    if not context.distributed:
        return rows
    table = torch.zeros(num_rows, *rows.shape[1:], dtype=rows.dtype)
    table[indices] = rows
    table = table.to(context.device)
    dist.all_reduce(table)
    return table.cpu()

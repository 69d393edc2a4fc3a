"""src/training/distributed.py and the trainer under torchrun: CPU, gloo, 2 processes on 127.0.0.1.

- one DDP step (SyncBatchNorm on) equals one single-process step on the same global batch;
- validation metrics all-reduced over the ranks' shares equal one process's;
- a short torchrun run on the tiny twin writes one set of checkpoints and events, and
  evaluate reads its best.pth;
- resume after kill -9 of one rank ends with the weights of an uninterrupted torchrun run.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, DistributedSampler, Subset

from src.config import load_config
from src.data.augment import get_test_transforms
from src.data.dataset import KTHActionDataset
from src.nets.classifier import build_model
from src.training import distributed
from src.training.checkpoint import load_model
from src.training.evaluation import evaluate
from src.training.loop import make_datasets, make_loaders, train_one_epoch
from src.training.metrics import classification_metrics, clip_logits, clip_video_index
from src.training.trainer import make_optimizer, seed_everything

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=2", "train.batch_size=8",
        f"train.epochs={EPOCHS}", "train.warmup_epochs=1"]
# one step: no dropout, SGD (its update is lr x gradient, so the weights' differences are the
# gradients' differences; Adam's first step lr x g/|g| would magnify rounding in tiny gradients)
STEP = [*TINY, "model.dropout=0.0", "train.optimizer=sgd", "train.lr=0.1", "train.sync_batchnorm=true"]
GLOBAL_BATCH = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixed_clips(data_root):
    """The first GLOBAL_BATCH training clips without augmentation (evenly spaced windows)."""
    config = load_config("configs/GRUCell.yaml", STEP)
    dataset = KTHActionDataset(data_root, split="train", max_frames=4, transform=get_test_transforms(3, 4))
    return config, Subset(dataset, range(GLOBAL_BATCH))


def one_step(model, loader, config, context=distributed.Context()):
    optimizer = make_optimizer(model, config["train"])
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return train_one_epoch(model, loader, optimizer, None, scaler, torch.device("cpu"), config, 1, context)


def validation_metrics(model, config, data_root, context):
    """What the trainer computes on the validation persons: each rank its share, then all-reduced."""
    train_set, val_set = make_datasets(config, data_root)
    _, val_loader, val_indices = make_loaders(config, train_set, val_set, context)
    logits, labels, _ = clip_logits(model, val_loader, torch.device("cpu"))
    logits = distributed.all_reduce_rows(context, logits, val_indices, len(val_set))
    labels = distributed.all_reduce_rows(context, labels, val_indices, len(val_set))
    return classification_metrics(logits, labels, clip_video_index(val_set))


def ddp_worker(rank, world_size, port, data_root, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    context = distributed.setup(torch.device("cpu"))
    try:
        config, clips = fixed_clips(data_root)
        seed_everything(0)
        model = build_model(config["model"], len(clips.dataset.classes), clips.dataset.channels, load_pretrained=False)
        metrics = validation_metrics(model, config, data_root, context)
        model, trained = distributed.wrap_model(model, context, sync_batchnorm=True)
        assert any(isinstance(m, distributed.GlooSyncBatchNorm) for m in model.modules())
        # DistributedSampler semantics: rank r takes clips r, r + 2, ...; half the global batch each
        loader = DataLoader(clips, batch_size=GLOBAL_BATCH // world_size,
                            sampler=DistributedSampler(clips, world_size, rank, shuffle=False))
        step = one_step(trained, loader, config, context)
        if rank == 0:
            torch.save({"state_dict": model.state_dict(), "step": step, "val": metrics}, out)
    finally:
        distributed.teardown(context)


@pytest.mark.slow  # two processes by mp.spawn
def test_one_ddp_step_equals_one_full_batch_step_and_reduced_metrics_equal_one_process(tiny_prepared, tmp_path):
    out = tmp_path / "rank0.pt"
    mp.spawn(ddp_worker, args=(2, free_port(), str(tiny_prepared), str(out)), nprocs=2)
    ddp = torch.load(out)

    config, clips = fixed_clips(tiny_prepared)
    seed_everything(0)
    model = build_model(config["model"], len(clips.dataset.classes), clips.dataset.channels, load_pretrained=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = validation_metrics(model, config, tiny_prepared, distributed.Context())
    step = one_step(model, DataLoader(clips, batch_size=GLOBAL_BATCH), config)
    after = model.state_dict()

    # validation: the same model, each rank half the clips, all-reduced = one process on all of them
    for key in ("accuracy", "video_accuracy", "per_class_accuracy", "confusion_matrix"):
        assert ddp["val"][key] == metrics[key], key
    assert ddp["val"]["loss"] == pytest.approx(metrics["loss"], rel=1e-6)

    # one step: the gradient of the mean loss over 8 clips, averaged over 2 ranks of 4 with the
    # BatchNorm statistics of all 8, is the single-process gradient up to the order of float32
    # sums (BatchNorm over 8 x 4 frames x 64 x 64 pixels, matmuls, the all-reduce); measured:
    # at most 6e-5 of a tensor's largest update, most tensors 1e-6. The weights then differ by
    # that (atol: 1e-4 of the largest update) plus the rounding of the new weight itself, up to
    # a few float32 ulps of its value (rtol: 4 x float32 eps, as a BatchNorm weight of 1.0 + 1e-4
    # is stored to 6e-8).
    assert step["loss"] == pytest.approx(ddp["step"]["loss"], rel=1e-5)
    assert step["accuracy"] == ddp["step"]["accuracy"]
    assert ddp["state_dict"].keys() == after.keys()
    changed = 0
    for key, value in after.items():
        if not value.is_floating_point():
            assert torch.equal(ddp["state_dict"][key], value), key  # num_batches_tracked
            continue
        scale = (value - before[key]).abs().max().item()
        changed += scale > 0
        torch.testing.assert_close(ddp["state_dict"][key], value, rtol=4 * torch.finfo(torch.float32).eps,
                                   atol=1e-4 * scale, msg=key)
    assert changed > 10  # the step moved the weights, BatchNorm's running statistics included


def sync_batchnorm_worker(rank, world_size, port, out):
    """GlooSyncBatchNorm in training mode under bfloat16 autocast, each rank half of one batch."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    context = distributed.setup(torch.device("cpu"))
    try:
        x = torch.load(out.replace("rank0", "input"))[rank::world_size]
        norm = distributed.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)), context.device)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = norm(x)
        if rank == 0:
            torch.save({"y": y, "mean": norm.running_mean, "var": norm.running_var}, out)
    finally:
        distributed.teardown(context)


@pytest.mark.slow  # two processes by mp.spawn
def test_sync_batchnorm_under_bfloat16_autocast_keeps_float32_statistics(tmp_path):
    """Under train.amp auto a CPU with native bf16 trains in bfloat16: the global batch statistics are taken in
    float32 (bfloat16 ones would lose them, and the float32 running statistics refuse a bfloat16 lerp), the output
    has the input's dtype."""
    x = (torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 2 + 1).bfloat16()
    torch.save(x, tmp_path / "input.pt")
    out = tmp_path / "rank0.pt"
    mp.spawn(sync_batchnorm_worker, args=(2, free_port(), str(out)), nprocs=2)
    ddp = torch.load(out)
    reference = torch.nn.BatchNorm2d(3)
    expected = reference(torch.cat([x[0::2], x[1::2]]).float())  # the global batch, rank 0's half first
    assert ddp["y"].dtype == torch.bfloat16 and ddp["mean"].dtype == torch.float32
    torch.testing.assert_close(ddp["mean"], reference.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ddp["var"], reference.running_var, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ddp["y"].float(), expected[:4], rtol=1e-2, atol=1e-2)  # rank 0's half, in bfloat16


def torchrun(*args, models, tboard, data, sets=(), **popen):
    """``torchrun --standalone --nproc_per_node=2 -m src.train`` on the tiny twin (a Popen)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "src.train", "--config", "configs/GRUCell.yaml", "--data", str(data), *args,
               "--set", *TINY, f"log.models_dir={models}", f"log.tboard_dir={tboard}", *sets]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, **popen)


@pytest.fixture(scope="module")
def torchrun_run(tiny_prepared, tmp_path_factory):
    """An uninterrupted 2-process run of the tiny GRUCell experiment."""
    out = tmp_path_factory.mktemp("torchrun")
    process = torchrun(models=out / "models", tboard=out / "tboard", data=tiny_prepared)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return out, output


@pytest.mark.slow  # torchrun, 2 processes
def test_torchrun_writes_one_set_of_checkpoints_and_events_that_evaluate_reads(torchrun_run, tiny_prepared):
    out, output = torchrun_run
    assert "x 2 processes (DDP, 4 clips per rank and step, SyncBatchNorm)" in output
    assert output.count(f"GRUCell epoch {EPOCHS}/{EPOCHS}") == 1  # rank 0 alone prints
    run_dir = out / "models" / "GRUCell"
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pth", "last.pth"]
    events = sorted((out / "tboard" / "GRUCell").glob("events.out.tfevents.*"))
    assert len({name.name.split(".")[-2] for name in events}) == 1  # written by one process
    accumulator = EventAccumulator(str(out / "tboard" / "GRUCell"))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("loss/train")] == list(range(1, EPOCHS + 1))

    last = torch.load(run_dir / "last.pth")
    assert not any(key.startswith("module.") for key in last["model_state_dict"])  # the unwrapped model
    model, checkpoint = load_model(run_dir / "best.pth")  # a plain model with plain BatchNorm
    assert not any(isinstance(m, distributed.GlooSyncBatchNorm) for m in model.modules())
    results = evaluate(run_dir / "best.pth", data_root=tiny_prepared)
    assert 0 <= results["video_accuracy"] <= 1 and (run_dir / "results.json").is_file()


@pytest.mark.slow  # torchrun, 2 processes
def test_resume_under_torchrun_after_kill_9_of_one_rank(torchrun_run, tiny_prepared, tmp_path):
    models, tboard = tmp_path / "models", tmp_path / "tboard"
    last = models / "GRUCell" / "last.pth"
    process = torchrun(models=models, tboard=tboard, data=tiny_prepared, start_new_session=True)
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    rank1 = next(pid for pid in workers if b"RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes())
    os.kill(int(rank1), signal.SIGKILL)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "rank      : 1" in output  # torchrun names the rank that failed
    assert torch.load(last)["epoch"] < EPOCHS, "the run was not killed before its last epoch"

    process = torchrun("--resume", models=models, tboard=tboard, data=tiny_prepared)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    resumed = torch.load(last)
    reference = torch.load(torchrun_run[0] / "models" / "GRUCell" / "last.pth")
    assert resumed["epoch"] == EPOCHS
    for key, tensor in reference["model_state_dict"].items():
        assert torch.equal(resumed["model_state_dict"][key], tensor), key


def test_an_error_under_torchrun_is_one_line_naming_the_rank(monkeypatch):
    import src.train
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as info:  # fails before the process group is joined
        src.train.main(["--config", "configs/GRUCell.yaml", "--set", "train.no_such_key=1"])
    message = str(info.value.code)
    assert message.startswith("error: rank 1 of 2: ") and "train.no_such_key" in message and "\n" not in message

"""src/training/trainer.py (and its command line, src/train.py) on the tiny synthetic twin: TensorBoard
events, checkpoints, resume, NaN stop."""
import copy
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import src.train
import src.training.loop
import src.training.trainer
from src.config import load_config
from src.data.dataset import KTHActionDataset
from src.data.sources.kth import ACTIONS
from src.training.checkpoint import CHECKPOINT_KEYS, CheckpointReadError, load_model, save_checkpoint
from src.training.device import autocast, cpu_description, training_precision
from src.training.loop import NonFiniteLossError
from src.training.runlock import LOCK_NAME, RunClaimedError, holding
from src.training.trainer import ANOTHER_NAME, ResumeRefusedError, log_epoch, make_scheduler, train
from tests.conftest import FOUR_CLASSES

EPOCHS = 2
# small enough to train in a second or two per run on one CPU thread
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=2", "train.batch_size=8",
        f"train.epochs={EPOCHS}", "train.warmup_epochs=1"]
SCALARS = ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "accuracy/val_video", "lr",
           "time/epoch_s", "time/data_wait_share"] + [f"val_class_accuracy/{a}" for a in ACTIONS]
TIMING_KEYS = ("epoch_time_s", "data_wait_s", "data_wait_share")


def tiny_config(out_dir, name="GRUCell", extra=()):
    return load_config("configs/GRUCell.yaml", [*TINY, f"log.models_dir={out_dir / 'models'}",
                                                f"log.tboard_dir={out_dir / 'tboard'}", *extra], name=name)


def without_timing(history):
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in history]


@pytest.fixture(scope="module")
def finished_run(tiny_prepared, tmp_path_factory):
    """A 2-epoch run of the GRUCell experiment on the tiny twin, through the command line."""
    out = tmp_path_factory.mktemp("run")
    src.train.main(["--config", "configs/GRUCell.yaml", "--data", str(tiny_prepared), "--set", *TINY,
                    f"log.models_dir={out / 'models'}", f"log.tboard_dir={out / 'tboard'}"])
    return out


def test_tensorboard_events_are_readable(finished_run):
    events = EventAccumulator(str(finished_run / "tboard" / "GRUCell"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in SCALARS:
        assert [e.step for e in events.Scalars(tag)] == list(range(1, EPOCHS + 1)), tag
    for tag in ["accuracy/train", "accuracy/val", "accuracy/val_video", "time/data_wait_share"]:
        assert all(0 <= e.value <= 1 for e in events.Scalars(tag)), tag
    assert all(math.isfinite(e.value) and e.value > 0 for e in events.Scalars("loss/train"))
    assert [e.step for e in events.Images("confusion_matrix/val")] == list(range(1, EPOCHS + 1))
    hparams = [t for t in tags["scalars"] if t.startswith("hparam/")]
    assert "hparam/best_val_accuracy" in hparams


def test_both_checkpoints_have_every_key_and_load_plainly(finished_run, tiny_prepared):
    run_dir = finished_run / "models" / "GRUCell"
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pth", "last.pth"]  # no lock, no temp file left
    last, best = torch.load(run_dir / "last.pth"), torch.load(run_dir / "best.pth")  # weights_only=True
    for checkpoint in (last, best):
        assert set(CHECKPOINT_KEYS) <= set(checkpoint)
        assert checkpoint["config"]["experiment"] == "GRUCell"
        assert checkpoint["data_root"] == str(tiny_prepared) and checkpoint["synthetic"] is True
        assert {"torch", "cuda", "numpy", "python"} <= set(checkpoint["rng_states"])
    assert last["epoch"] == EPOCHS
    history = last["metrics"]["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    best_row = max(history, key=lambda row: row["val_accuracy"])  # first of the ties, like the trainer
    assert best["epoch"] == last["metrics"]["best"]["epoch"] == best_row["epoch"]
    assert last["metrics"]["best"]["val_accuracy"] == best_row["val_accuracy"]
    assert history[0]["lr"] < history[1]["lr"]  # linear warm-up during epoch 1
    assert all(0 < row["data_wait_share"] < 1 for row in history)

    model, checkpoint = load_model(run_dir / "best.pth")
    assert checkpoint["epoch"] == best["epoch"]
    with torch.no_grad():
        logits = model(torch.rand(2, 4, 1, 64, 64))
    assert logits.shape == (2, len(ACTIONS)) and torch.isfinite(logits).all()


def test_resume_after_an_interruption_equals_an_uninterrupted_run(finished_run, tiny_prepared, tmp_path,
                                                                  monkeypatch):
    config = tiny_config(tmp_path)
    save = src.training.trainer.save_checkpoint

    def save_then_die(checkpoint, path):
        save(checkpoint, path)
        if path.name == "last.pth" and checkpoint["epoch"] == 1:
            raise KeyboardInterrupt  # the process dies right after epoch 1's checkpoint

    monkeypatch.setattr(src.training.trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, data_root=tiny_prepared)
    monkeypatch.undo()
    assert not list(tmp_path.rglob(LOCK_NAME))  # Ctrl-C released the run's claims
    torch.manual_seed(123)  # whatever happened in between must not matter
    summary = train(config, data_root=tiny_prepared, resume=True)

    resumed = torch.load(tmp_path / "models" / "GRUCell" / "last.pth")
    reference = torch.load(finished_run / "models" / "GRUCell" / "last.pth")
    assert summary["epochs"] == EPOCHS
    assert without_timing(resumed["metrics"]["history"]) == without_timing(reference["metrics"]["history"])
    assert resumed["metrics"]["best"] == reference["metrics"]["best"]
    for key, tensor in reference["model_state_dict"].items():
        assert torch.equal(resumed["model_state_dict"][key], tensor), key
    assert resumed["scheduler_state_dict"] == reference["scheduler_state_dict"]

    # the resumed run appended to the same TensorBoard run: one event per epoch
    events = EventAccumulator(str(tmp_path / "tboard" / "GRUCell"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/train")] == list(range(1, EPOCHS + 1))


@pytest.mark.slow  # a python -m src.train subprocess
def test_resume_after_kill_9(finished_run, tiny_prepared, tmp_path):
    """A real process killed with SIGKILL during epoch 2, then resumed, ends like the uninterrupted run."""
    overrides = [*TINY, f"log.models_dir={tmp_path / 'models'}", f"log.tboard_dir={tmp_path / 'tboard'}"]
    last = tmp_path / "models" / "GRUCell" / "last.pth"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same float reductions as here
    process = subprocess.Popen([sys.executable, "-m", "src.train", "--config", "configs/GRUCell.yaml",
                                "--data", str(tiny_prepared), "--set", *overrides],
                               cwd=Path(src.train.__file__).parents[1], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert torch.load(last)["epoch"] == 1, "the run was not killed during epoch 2"

    train(load_config("configs/GRUCell.yaml", overrides), data_root=tiny_prepared, resume=True)
    resumed = torch.load(last)
    reference = torch.load(finished_run / "models" / "GRUCell" / "last.pth")
    assert without_timing(resumed["metrics"]["history"]) == without_timing(reference["metrics"]["history"])
    for key, tensor in reference["model_state_dict"].items():
        assert torch.equal(resumed["model_state_dict"][key], tensor), key


def test_resume_without_a_checkpoint_starts_from_scratch(tiny_prepared, tmp_path):
    summary = train(tiny_config(tmp_path, extra=["train.epochs=1"]), data_root=tiny_prepared, resume=True)
    assert summary["epochs"] == 1 and (tmp_path / "models" / "GRUCell" / "last.pth").is_file()
    # resuming with a changed config says which keys changed
    with pytest.warns(UserWarning, match=r"changed config \(train\.epochs: 1 -> 2\)"):
        summary = train(tiny_config(tmp_path, extra=["train.epochs=2"]), data_root=tiny_prepared, resume=True)
    assert summary["epochs"] == 2


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_prepared, tmp_path, monkeypatch):
    build = src.training.trainer.build_model

    def build_model_that_breaks_in_epoch_2(model_config, **kwargs):
        model = build(model_config, **kwargs)
        calls = {"train": 0}

        def poison(module, inputs, output):
            if module.training:
                calls["train"] += 1
                if calls["train"] > steps_per_epoch:  # the first training step of epoch 2
                    return output * float("nan")
            return output

        model.register_forward_hook(poison)
        return model

    steps_per_epoch = math.ceil(len(KTHActionDataset(tiny_prepared, split="train")) / 8)
    monkeypatch.setattr(src.training.trainer, "build_model", build_model_that_breaks_in_epoch_2)
    with pytest.raises(NonFiniteLossError) as info:
        train(tiny_config(tmp_path), data_root=tiny_prepared)
    message = str(info.value)
    assert "loss is nan at epoch 2, step 1/" in message and "keeps epoch 1" in message and "\n" not in message
    last = torch.load(tmp_path / "models" / "GRUCell" / "last.pth")
    assert last["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in last["model_state_dict"].values() if t.is_floating_point())


def lr_curve(scheduler_name, epochs=10, steps_per_epoch=5, warmup_epochs=2):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    config = {"scheduler": scheduler_name, "epochs": epochs, "warmup_epochs": warmup_epochs}
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    lrs = []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_cosine_schedule_warms_up_then_decays_over_the_whole_run():
    lrs = lr_curve("cosine")
    warmup = lrs[:10]
    assert warmup[0] == pytest.approx(0.1) and all(a < b for a, b in zip(warmup, warmup[1:]))
    assert lrs[10] == pytest.approx(1.0)
    decay = lrs[10:]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert lrs[30] > 0.3  # still learning well past the middle, unlike a step decay
    assert lrs[-1] < 0.01
    assert make_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0),
                          {"scheduler": "none", "epochs": 3, "warmup_epochs": 1}, 5) is None


def test_bad_data_is_a_one_line_error(tiny_prepared, tmp_path):
    with pytest.raises(SystemExit) as info:
        src.train.main(["--config", "configs/GRUCell.yaml", "--data", str(tiny_prepared), "--set", *TINY,
                        "data.val_persons=[3]", f"log.models_dir={tmp_path}", f"log.tboard_dir={tmp_path}"])
    message = str(info.value.code)
    assert message.startswith("error: data.split: course leaves the val split empty") and "\n" not in message
    assert "persons [3]" in message and "holds persons 1, 2, 15, 17" in message
    with pytest.raises(SystemExit) as info:
        src.train.main(["--config", "configs/GRUCell.yaml", "--data", str(tmp_path / "nothing")])
    assert f"{tmp_path / 'nothing'}: no prepared dataset" in str(info.value.code)


def test_the_augment_section_drives_the_training_batches(tiny_prepared):
    """make_batches augments the training clips as ``config['augment']`` says (flip_p 1: every clip
    mirrored, the same clips otherwise); neither split gets a per-item transform, which training never uses."""
    from src.training.loop import make_batches, make_datasets

    clips = {}
    for flip_p in (0, 1):
        config = load_config("configs/GRUCell.yaml", [*TINY, f"augment.flip_p={flip_p}", "augment.rotation=0",
                                                      "augment.reverse_p=0"])
        train_set, val_set = make_datasets(config, tiny_prepared)
        assert train_set.transform is None and val_set.transform is None
        train_batches, val_batches = make_batches(config, train_set, val_set, torch.device("cpu"))
        augmentation = train_batches.augmentation
        assert (augmentation.flip_p, augmentation.rotation, augmentation.reverse_p) == (flip_p, 0, 0)
        assert val_batches.augmentation is None
        train_batches.set_epoch(1)
        clips[flip_p] = next(iter(train_batches))[0]
    assert not torch.equal(clips[0], clips[1])
    torch.testing.assert_close(clips[1], clips[0].flip(-1), atol=1e-5, rtol=0)  # grid_sample at pixel centres


def test_training_steps_run_under_bf16_autocast_on_cpu(tiny_prepared):
    """The AMP path (train_one_epoch under autocast), covered on CPU with bfloat16."""
    from src.nets.classifier import build_model
    from src.training.loop import make_batches, make_datasets, train_one_epoch
    from src.training.trainer import make_optimizer, prepare_model

    config = load_config("configs/GRUCell.yaml", TINY)
    device = torch.device("cpu")
    train_set, val_set = make_datasets(config, tiny_prepared)
    train_batches, _ = make_batches(config, train_set, val_set, device)
    model = build_model(config["model"], len(train_set.classes), train_set.channels)
    model = prepare_model(model, config["train"], device)
    before = [p.detach().clone() for p in model.parameters()]
    conv_dtypes = []
    model.encoder.blocks[0].register_forward_hook(lambda module, args, out: conv_dtypes.append(out.dtype))
    optimizer = make_optimizer(model, config["train"])
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    metrics = train_one_epoch(model, train_batches, optimizer, None, scaler, device, config, epoch=1,
                              precision="bfloat16")
    assert conv_dtypes and set(conv_dtypes) == {torch.bfloat16}
    assert math.isfinite(metrics["loss"]) and 0.0 <= metrics["accuracy"] <= 1.0
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("arch", ["rnn", "r2plus1d"])
def test_prepare_model_puts_convolutions_in_channels_last_and_keeps_the_outputs(arch):
    from src.nets.classifier import build_model
    from src.training.trainer import prepare_model

    config = load_config("configs/GRUCell.yaml", [f"model.arch={arch}"])
    torch.manual_seed(0)
    model = build_model(config["model"], len(ACTIONS)).eval()
    clips = torch.rand(2, 4, 1, 32, 32)
    expected = model(clips)
    model = prepare_model(model, config["train"], torch.device("cpu"))
    weights_2d = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    weights_3d = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert weights_2d and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                              for w in weights_2d if w.shape[1] > 1 and w.shape[2:].numel() > 1)
    if arch == "r2plus1d":
        assert weights_3d and all(w.is_contiguous(memory_format=torch.channels_last_3d) and not w.is_contiguous()
                                  for w in weights_3d if w.shape[1] > 1 and w.shape[2:].numel() > 1)
    torch.testing.assert_close(model(clips), expected, rtol=1e-4, atol=1e-5)


def test_checkpoints_record_their_provenance(finished_run, tiny_prepared):
    provenance = torch.load(finished_run / "models" / "GRUCell" / "last.pth")["provenance"]
    assert provenance["data"]["root"] == str(tiny_prepared) and provenance["data"]["synthetic"] is True
    assert provenance["data"]["fingerprint"].startswith("sha1:") and provenance["data"]["preset"] == "tiny"
    assert provenance["precision"] == training_precision("auto", torch.device("cpu"))  # the default, train.amp auto
    assert provenance["amp"] is (provenance["precision"] != "float32") and provenance["device"] == "cpu"
    assert provenance["machine"] == cpu_description()  # the CPU model: timings differ between machines
    assert provenance["code_version"]


def test_resume_on_other_data_or_another_architecture_is_refused_in_one_line(tiny_prepared, tiny_unmarked,
                                                                             tmp_path):
    train(tiny_config(tmp_path, extra=["train.epochs=1"]), data_root=tiny_prepared)
    args = ["--config", "configs/GRUCell.yaml", "--resume", "--set", *TINY, "train.epochs=2",
            f"log.models_dir={tmp_path / 'models'}", f"log.tboard_dir={tmp_path / 'tboard'}"]
    with pytest.raises(SystemExit) as info:
        src.train.main([*args, "--data", str(tiny_unmarked)])
    message = str(info.value.code)
    assert f"was trained on {tiny_prepared} (synthetic), now {tiny_unmarked} (real KTH)" in message
    assert "--name" in message and str(tmp_path / "models" / "GRUCell") in message and "\n" not in message
    with pytest.raises(SystemExit) as info:
        src.train.main([*args, "--data", str(tiny_prepared), "--set", "model.hidden_dim=24"])
    assert "another model architecture (model.hidden_dim: 16 -> 24)" in str(info.value.code)
    assert torch.load(tmp_path / "models" / "GRUCell" / "last.pth")["epoch"] == 1  # untouched


def test_batchnorm_statistics_are_recomputed_with_the_final_weights(finished_run, tiny_prepared):
    """The checkpoint's BatchNorm statistics are those of its own weights over the epoch's last
    ``train.precise_bn_batches`` training batches, not the running averages of the training steps."""
    model, checkpoint = load_model(finished_run / "models" / "GRUCell" / "last.pth")
    config = checkpoint["config"]
    batches_used = config["train"]["precise_bn_batches"]
    assert batches_used > 0
    saved = {name: buffer.clone() for name, buffer in model.named_buffers() if "running" in name}
    train_set, val_set = src.training.loop.make_datasets(config, tiny_prepared)
    train_batches, _ = src.training.loop.make_batches(config, train_set, val_set, torch.device("cpu"))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    expected_count = min(batches_used, len(train_batches))  # not epochs x steps
    assert norms and all(m.num_batches_tracked.item() == expected_count for m in norms)

    train_batches.set_epoch(checkpoint["epoch"])
    last_batches = list(train_batches)[-batches_used:]  # the whole model over them, in train mode
    precision = checkpoint["provenance"]["precision"]  # bfloat16 under train.amp auto on a CPU with native bf16
    with autocast(torch.device("cpu"), precision):
        torch.optim.swa_utils.update_bn(last_batches, model)
    # bfloat16 convolutions round differently in the trainer (channels_last) and here: measured up to 7e-5 on
    # statistics of 0.1-0.5; the running averages of the training steps would be off by ~0.1
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if precision == "float32" else {"rtol": 2e-2, "atol": 1e-3}
    for name, buffer in model.named_buffers():
        if "running" in name:
            torch.testing.assert_close(buffer, saved[name], **tolerance, msg=name)


def test_recompute_batchnorm_statistics_uses_the_first_batches_and_keeps_the_mode():
    """Running statistics become the mean and (unbiased) variance over the first ``num_batches``
    batches alone, whatever the running averages were; later batches and the eval mode are untouched."""
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm1d(3).eval()
    norm.running_mean.fill_(100.0)
    batches = [(torch.randn(8, 3) + 5.0, torch.zeros(8)) for _ in range(2)]
    batches.append((torch.randn(8, 3) - 50.0, torch.zeros(8)))  # must not count
    src.training.loop.recompute_batchnorm_statistics(norm, iter(batches), num_batches=2)
    used = torch.cat([clips for clips, _ in batches[:2]])
    torch.testing.assert_close(norm.running_mean, used.mean(0))
    per_batch_var = torch.stack([clips.var(0) for clips, _ in batches[:2]]).mean(0)
    torch.testing.assert_close(norm.running_var, per_batch_var)
    assert not norm.training and norm.num_batches_tracked.item() == 2


@pytest.mark.parametrize("arch", ["rnn", "r2plus1d"])
def test_recomputed_statistics_equal_a_whole_model_forward_in_train_mode(arch):
    """For arch rnn only the encoder runs, on the clips' frames; its statistics are bit for bit those of
    the whole model run in train mode over the same clips (torch's update_bn), and the mode is kept."""
    from src.nets.classifier import build_model
    from src.training.loop import batchnorm_part, recompute_batchnorm_statistics
    from src.training.trainer import prepare_model

    config = load_config("configs/GRUCell.yaml", [f"model.arch={arch}", *TINY[:3]])
    torch.manual_seed(0)
    model = prepare_model(build_model(config["model"], 6), config["train"], torch.device("cpu")).eval()
    part, frames = batchnorm_part(model)
    assert (part is model.encoder and frames) if arch == "rnn" else (part is model and not frames)
    clips = [torch.rand(4, 3, 1, 32, 32) for _ in range(3)]
    whole, cheap = copy.deepcopy(model), copy.deepcopy(model)
    torch.optim.swa_utils.update_bn([(c, torch.zeros(4)) for c in clips[:2]], whole)
    recompute_batchnorm_statistics(cheap, clips, num_batches=2)  # the first 2 of the 3
    buffers = dict(cheap.named_buffers())
    assert any("running_mean" in name for name in buffers)
    for name, buffer in whole.named_buffers():
        assert torch.equal(buffers[name], buffer), name
    assert not any(module.training for module in cheap.modules())  # eval mode kept


def test_train_one_epoch_keeps_the_clips_of_its_last_batches(tiny_prepared):
    from src.nets.classifier import build_model
    from src.training.loop import make_batches, make_datasets, train_one_epoch
    from src.training.trainer import make_optimizer, prepare_model

    config = load_config("configs/GRUCell.yaml", TINY)
    device = torch.device("cpu")
    train_set, val_set = make_datasets(config, tiny_prepared)
    train_batches, _ = make_batches(config, train_set, val_set, device)
    model = prepare_model(build_model(config["model"], 6), config["train"], device)
    optimizer = make_optimizer(model, config["train"])
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    kept = train_one_epoch(model, train_batches, optimizer, None, scaler, device, config, epoch=3, keep_last=2)
    train_batches.set_epoch(3)
    expected = [clips for clips, _ in train_batches][-2:]
    assert len(train_batches) > 2 and len(kept["last_clips"]) == 2
    assert all(torch.equal(a, b) for a, b in zip(kept["last_clips"], expected, strict=True))
    assert train_one_epoch(model, train_batches, optimizer, None, scaler, device, config, epoch=4)["last_clips"] == []


@pytest.mark.parametrize("amp, precision", [(True, "bfloat16"), (False, "float32")])
def test_train_amp_gives_the_precision_that_training_and_evaluation_record(tiny_prepared, tmp_path, caplog,
                                                                          amp, precision):
    """train.amp true: bfloat16 autocast on any CPU (emulated without native bf16: slow, still correct);
    false: float32. The trainer's first line, the checkpoint and results.json say which."""
    from src.training.evaluation import evaluate

    config = tiny_config(tmp_path, extra=[f"train.amp={str(amp).lower()}", "train.epochs=1", "eval.latency_repeats=1"])
    with caplog.at_level(logging.INFO, logger="src.training.trainer"):
        train(config, data_root=tiny_prepared)
    assert f"trainable parameters on cpu, {precision}; " in caplog.text
    last = tmp_path / "models" / "GRUCell" / "last.pth"
    checkpoint = torch.load(last)
    assert checkpoint["provenance"]["precision"] == precision and checkpoint["provenance"]["amp"] is amp
    row = checkpoint["metrics"]["history"][0]
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])
    assert all(t.dtype == torch.float32 for t in checkpoint["model_state_dict"].values() if t.is_floating_point())
    results = evaluate(last, data_root=tiny_prepared, device="cpu", write=False)
    assert results["precision"] == precision and results["provenance"]["train_precision"] == precision
    assert results["amp"] is amp and math.isfinite(results["test_loss"])


def test_a_run_held_by_another_process_is_refused_before_the_data_is_read(tmp_path):
    lock = tmp_path / "tboard" / "GRUCell" / LOCK_NAME  # the same name and TensorBoard folder, other models_dir
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "time": time.time()}))
    with pytest.raises(RunClaimedError) as info:
        train(tiny_config(tmp_path), data_root=tmp_path / "no data here")  # the data would be an error
    message = str(info.value)
    assert message.startswith(f"{lock.parent}: claimed by process {os.getppid()} on {socket.gethostname()}")
    assert ANOTHER_NAME in message and str(lock) in message
    assert not (tmp_path / "models").exists()  # its claim was given back, and the folders it made removed
    assert lock.is_file()


def test_the_suite_process_holding_the_run_trains_it(tiny_prepared, tmp_path):
    """The claim is re-entrant: src.suite holds models/<run>/run.lock, then calls train() in its process."""
    lock = tmp_path / "models" / "GRUCell" / LOCK_NAME
    with holding(lock):
        summary = train(tiny_config(tmp_path, extra=["train.epochs=1"]), data_root=tiny_prepared)
        assert summary["epochs"] == 1 and lock.is_file()
    assert not list(tmp_path.rglob(LOCK_NAME))


def test_a_tboard_dir_that_cannot_be_made_is_one_line_naming_the_key(tiny_prepared, tmp_path):
    (tmp_path / "file").write_text("a regular file")
    with pytest.raises(SystemExit) as info:
        src.train.main(["--config", "configs/GRUCell.yaml", "--data", str(tiny_prepared), "--set", *TINY,
                        f"log.models_dir={tmp_path / 'models'}", f"log.tboard_dir={tmp_path / 'file' / 'tb'}"])
    message = str(info.value.code)
    assert message.startswith(f"error: log.tboard_dir: {tmp_path / 'file' / 'tb' / 'GRUCell'}: cannot make the folder")
    assert message.endswith("; set log.tboard_dir to a folder you can write") and "\n" not in message
    assert not list(tmp_path.rglob(LOCK_NAME)) and not list(tmp_path.rglob("*.pth"))  # the models claim given back


def test_a_dataset_of_four_classes_trains_a_head_of_four_outputs_named_as_its_classes(four_class_run):
    run = four_class_run / "models" / "GRUCell"
    for name in ("best.pth", "last.pth"):
        saved = torch.load(run / name)
        assert (saved["classes"], saved["channels"]) == (FOUR_CLASSES, 1), name
    model, checkpoint = load_model(run / "best.pth")
    assert model.fc.out_features == len(FOUR_CLASSES)
    with torch.no_grad():
        assert model(torch.rand(2, 4, 1, 64, 64)).shape == (2, len(FOUR_CLASSES))
    best = checkpoint["metrics"]["best"]
    assert len(best["val_per_class_accuracy"]) == len(best["val_confusion_matrix"]) == len(FOUR_CLASSES)
    events = EventAccumulator(str(four_class_run / "tboard" / "GRUCell"))
    events.Reload()
    per_class = [tag for tag in events.Tags()["scalars"] if tag.startswith("val_class_accuracy/")]
    assert sorted(per_class) == sorted(f"val_class_accuracy/{name}" for name in FOUR_CLASSES)


def test_log_epoch_names_the_per_class_accuracies_and_the_confusion_matrix_after_the_classes_given():
    logged = {}

    class Writer:
        def add_scalar(self, tag, value, step):
            logged[tag] = value

        def add_figure(self, tag, figure, step):
            logged[tag] = figure

        def flush(self):
            pass

    row = {"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "train_accuracy": 0.5, "val_accuracy": 0.5,
           "val_video_accuracy": 0.5, "lr": 0.1, "epoch_time_s": 1.0, "data_wait_share": 0.1,
           "val_per_class_accuracy": [1.0, 0.0]}
    log_epoch(Writer(), row, {"confusion_matrix": [[2, 0], [1, 0]]}, ["wave", "clap"])
    assert (logged["val_class_accuracy/wave"], logged["val_class_accuracy/clap"]) == (1.0, 0.0)
    axes = logged["confusion_matrix/val"].axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["wave", "clap"]
    with pytest.raises(ValueError):  # per-class accuracies of another number of classes than named
        log_epoch(Writer(), row, {"confusion_matrix": [[2, 0], [1, 0]]}, ["wave", "clap", "jump"])


# ------------------------------------------------------------------- the recipe's options (issue 19)

def stub_batches(seed=0, steps=3):
    """Three batches of 5 random clips (B, T, C, H, W) = (5, 2, 1, 3, 3) and labels of 4 classes."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(5, 2, 1, 3, 3, generator=generator), torch.randint(0, 4, (5,), generator=generator))
            for _ in range(steps)]


def stub_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 4))


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_label_smoothing_is_the_training_loss_of_f_cross_entropy(smoothing):
    """train_one_epoch's loss is F.cross_entropy with train.label_smoothing, over every clip (the weights held
    still by a zero learning rate, so that every batch sees the same model)."""
    import torch.nn.functional as F

    from src.training.loop import train_one_epoch

    config = load_config("configs/GRUCell.yaml", [f"train.label_smoothing={smoothing}", "train.grad_clip=0"])
    model, batches = stub_model(), stub_batches()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    metrics = train_one_epoch(model, batches, optimizer, None, torch.amp.GradScaler("cpu", enabled=False),
                              torch.device("cpu"), config, epoch=1)
    clips, labels = torch.cat([c for c, _ in batches]), torch.cat([y for _, y in batches])
    with torch.no_grad():
        expected = F.cross_entropy(model(clips), labels, label_smoothing=smoothing).item()
        plain = F.cross_entropy(model(clips), labels).item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-6) and metrics["steps"] == len(batches)
    assert (metrics["loss"] == pytest.approx(plain, rel=1e-6)) is (smoothing == 0)


def test_the_loss_on_every_step_is_the_mean_cross_entropy_of_every_prefix_answer():
    """train.loss_on_every_step: the mean over t = 1..T of the cross-entropy of model(clips[:, :t]) (a tiny
    ActionClassifier in eval mode, so that the prefixes run alone give the same answers), with the label smoothing;
    the logits it returns are the whole clip's, and every parameter gets a gradient."""
    import torch.nn.functional as F

    from src.nets.classifier import ActionClassifier
    from src.training.loop import training_loss

    torch.manual_seed(0)
    model = ActionClassifier(num_classes=4, emb_dim=8, hidden_dim=6, num_layers=1).eval()
    clips, labels = torch.rand(5, 4, 1, 32, 32), torch.tensor([0, 1, 2, 3, 1])
    train = {"label_smoothing": 0.1, "loss_on_every_step": True}
    logits, loss = training_loss(model, clips, labels, train)
    with torch.no_grad():
        expected = torch.stack([F.cross_entropy(model(clips[:, :t]), labels, label_smoothing=0.1)
                                for t in range(1, 5)]).mean()
        clip_loss = F.cross_entropy(model(clips), labels, label_smoothing=0.1)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits.detach(), model(clips).detach(), rtol=1e-5, atol=1e-6)
    assert not torch.isclose(loss.detach(), clip_loss)  # not the clip's loss alone
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    plain_logits, plain = training_loss(model, clips, labels, {**train, "loss_on_every_step": False})
    torch.testing.assert_close(plain.detach(), clip_loss)


def test_the_average_of_the_weights_is_updated_after_every_optimizer_step():
    """train.ema_decay d: after the first step the average is the weights, then d * average + (1 - d) * weights
    after every step, computed here by hand over a copy of the model trained on the same batches."""
    import torch.nn.functional as F

    from src.training.loop import make_averaged_model, train_one_epoch

    config = load_config("configs/GRUCell.yaml", ["train.ema_decay=0.75", "train.grad_clip=0"])
    off = load_config("configs/GRUCell.yaml", ["train.ema_decay=0"])["train"]
    assert make_averaged_model(stub_model(), off) is None
    model, batches = stub_model(), stub_batches()
    reference = copy.deepcopy(model)
    averaged = make_averaged_model(model, config["train"])
    train_one_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.5), None,
                    torch.amp.GradScaler("cpu", enabled=False), torch.device("cpu"), config, epoch=1, averaged=averaged)
    optimizer, expected = torch.optim.SGD(reference.parameters(), lr=0.5), None
    for clips, labels in batches:
        optimizer.zero_grad()
        F.cross_entropy(reference(clips), labels).backward()
        optimizer.step()
        weights = [p.detach().clone() for p in reference.parameters()]
        expected = weights if expected is None else [0.75 * e + 0.25 * w for e, w in zip(expected, weights)]
    assert int(averaged.n_averaged) == len(batches)
    for trained, by_hand in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(trained, by_hand)  # the training itself is untouched
    for average, by_hand in zip(averaged.module.parameters(), expected, strict=True):
        torch.testing.assert_close(average, by_hand)
    assert all(not torch.equal(average, p) for average, p in zip(averaged.module.parameters(), model.parameters()))


EMA = ["train.ema_decay=0.8"]


@pytest.fixture(scope="module")
def ema_run(tiny_prepared, tmp_path_factory):
    """A 2-epoch GRUCell run on the tiny twin with train.ema_decay, uninterrupted."""
    out = tmp_path_factory.mktemp("ema_run")
    summary = train(tiny_config(out, extra=EMA), data_root=tiny_prepared)
    return out, summary


def test_with_ema_the_validated_and_saved_weights_are_the_average(ema_run, tiny_prepared):
    """The checkpoints' model_state_dict is the average (the trained weights go in "ema"), load_model gives it, and
    its validation accuracy, recomputed here from those weights, is the one the history recorded."""
    from src.training.loop import make_batches, make_datasets
    from src.training.metrics import classification_metrics, clip_logits, clip_video_index

    out, summary = ema_run
    assert summary["ema_decay"] == 0.8 and summary["select"] == "best"
    last = torch.load(out / "models" / "GRUCell" / "last.pth")
    history = last["metrics"]["history"]
    assert last["ema"]["decay"] == 0.8 and last["ema"]["updates"] == sum(row["steps"] for row in history) > 0
    trained, averaged = last["ema"]["trained_state_dict"], last["model_state_dict"]
    assert trained.keys() == averaged.keys()
    assert any(not torch.equal(trained[key], averaged[key]) for key in trained if "running" not in key)

    model, checkpoint = load_model(out / "models" / "GRUCell" / "last.pth")
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, averaged[key]), key
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    recomputed_over = min(checkpoint["config"]["train"]["precise_bn_batches"], history[-1]["steps"])
    assert norms and all(m.num_batches_tracked.item() == recomputed_over for m in norms)  # on the average itself
    config = checkpoint["config"]
    train_set, val_set = make_datasets(config, tiny_prepared)
    _, val_batches = make_batches(config, train_set, val_set, torch.device("cpu"))
    logits, labels, _ = clip_logits(model, val_batches, torch.device("cpu"), checkpoint["provenance"]["precision"])
    metrics = classification_metrics(logits, labels, clip_video_index(val_set), num_classes=len(train_set.classes))
    assert metrics["accuracy"] == history[-1]["val_accuracy"]
    precision = checkpoint["provenance"]["precision"]  # bfloat16 rounds otherwise in channels_last (training)
    assert metrics["loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-5 if precision == "float32" else 1e-3)


def test_a_resumed_ema_run_ends_with_exactly_the_weights_of_an_uninterrupted_one(ema_run, tiny_prepared, tmp_path,
                                                                                monkeypatch):
    out, _ = ema_run
    config = tiny_config(tmp_path, extra=EMA)
    save = src.training.trainer.save_checkpoint

    def save_then_die(checkpoint, path):
        save(checkpoint, path)
        if path.name == "last.pth" and checkpoint["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(src.training.trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, data_root=tiny_prepared)
    monkeypatch.undo()
    train(config, data_root=tiny_prepared, resume=True)
    resumed = torch.load(tmp_path / "models" / "GRUCell" / "last.pth")
    reference = torch.load(out / "models" / "GRUCell" / "last.pth")
    assert without_timing(resumed["metrics"]["history"]) == without_timing(reference["metrics"]["history"])
    assert resumed["ema"]["updates"] == reference["ema"]["updates"]
    for mine, theirs in ((resumed["model_state_dict"], reference["model_state_dict"]),  # the average
                         (resumed["ema"]["trained_state_dict"], reference["ema"]["trained_state_dict"])):
        for key, tensor in theirs.items():
            assert torch.equal(mine[key], tensor), key
    for index, state in reference["optimizer_state_dict"]["state"].items():
        assert all(torch.equal(resumed["optimizer_state_dict"]["state"][index][name], state[name]) for name in state)


@pytest.mark.parametrize("select, saved_epoch", [("best", 1), ("last", EPOCHS)])
def test_train_select_says_which_epoch_best_pth_holds(tiny_prepared, tmp_path, monkeypatch, caplog, select,
                                                      saved_epoch):
    """Validation made to peak at epoch 1: best.pth is epoch 1 with train.select best, the last epoch with last,
    and then the same weights as last.pth; the summary and the trainer's lines say which."""
    measure = src.training.loop.classification_metrics
    accuracies = iter([0.9, 0.5, 0.4])

    def peak_first(*args, **kwargs):
        return {**measure(*args, **kwargs), "accuracy": next(accuracies)}

    monkeypatch.setattr(src.training.loop, "classification_metrics", peak_first)
    with caplog.at_level(logging.INFO, logger="src.training.trainer"):
        summary = train(tiny_config(tmp_path, extra=[f"train.select={select}"]), data_root=tiny_prepared)
    run = tmp_path / "models" / "GRUCell"
    best, last = torch.load(run / "best.pth"), torch.load(run / "last.pth")
    assert best["epoch"] == best["metrics"]["best"]["epoch"] == last["metrics"]["best"]["epoch"] == saved_epoch
    assert (summary["select"], summary["best_epoch"], summary["epochs"]) == (select, saved_epoch, EPOCHS)
    assert summary["best_val_accuracy"] == [0.9, 0.5][saved_epoch - 1]
    same = all(torch.equal(best["model_state_dict"][key], tensor) for key, tensor in last["model_state_dict"].items())
    assert same is (select == "last")
    err = caplog.text
    assert ("best.pth: the last epoch (train.select last)" in err) is (select == "last")
    assert ("*best*" in err) is (select == "best")


@pytest.mark.parametrize("where", ["same run", "last.pth copied into a new run"])
def test_a_finished_run_resumed_with_train_select_last_keeps_its_last_epoch(tiny_prepared, tmp_path, monkeypatch,
                                                                            caplog, where):
    """A run trained with train.select best (validation made to peak at epoch 1), resumed with last, in its folder
    or from its last.pth alone in another: no epoch is trained again, best.pth becomes the last epoch's weights
    and the summary says so; this is how experiments.recipe.study gets a 'last epoch' recipe without training it."""
    measure = src.training.loop.classification_metrics
    accuracies = iter([0.9, 0.5])
    monkeypatch.setattr(src.training.loop, "classification_metrics",
                        lambda *args, **kwargs: {**measure(*args, **kwargs), "accuracy": next(accuracies)})
    train(tiny_config(tmp_path / "first"), data_root=tiny_prepared)
    monkeypatch.setattr(src.training.loop, "classification_metrics", measure)
    trained = tmp_path / "first" / "models" / "GRUCell"
    assert torch.load(trained / "best.pth")["epoch"] == 1
    out = tmp_path / "first" if where == "same run" else tmp_path / "second"
    if where != "same run":
        (out / "models" / "GRUCell").mkdir(parents=True)
        (out / "models" / "GRUCell" / "last.pth").write_bytes((trained / "last.pth").read_bytes())
    last_before = (trained / "last.pth").read_bytes()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="src.training.trainer"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train(tiny_config(out, extra=["train.select=last"]), data_root=tiny_prepared, resume=True)
    run = out / "models" / "GRUCell"
    best, last = torch.load(run / "best.pth"), torch.load(run / "last.pth")
    if where == "same run":
        assert (run / "last.pth").read_bytes() == last_before  # nothing trained, last.pth untouched
    assert best["epoch"] == best["metrics"]["best"]["epoch"] == summary["best_epoch"] == EPOCHS
    assert summary["best_val_accuracy"] == 0.5 and summary["epochs"] == EPOCHS  # the last row's, not retrained
    assert all(torch.equal(best["model_state_dict"][key], tensor) for key, tensor in last["model_state_dict"].items())
    assert best["config"]["train"]["select"] == "last"
    confusion = torch.as_tensor(best["metrics"]["best"]["val_confusion_matrix"])
    assert confusion.sum() > 0  # validated again: the matrix of the last epoch's weights
    err = caplog.text
    assert "best.pth is now the last epoch's weights, epoch 2" in err
    # train.select changes which epoch is kept, not the training
    assert not [w for w in caught if "changed config" in str(w.message)]


@pytest.mark.parametrize("saved, now", [(["train.optimizer=adam"], ["train.optimizer=sgd"]),
                                        (["train.scheduler=none"], ["train.scheduler=cosine"]),
                                        (["train.scheduler=none"], ["train.scheduler=step"]),
                                        (["train.scheduler=cosine"], ["train.scheduler=none"])])
def test_resume_with_another_optimizer_or_schedule_is_refused_before_the_data_is_read(tmp_path, saved, now):
    last = tmp_path / "models" / "GRUCell" / "last.pth"
    save_checkpoint({"config": tiny_config(tmp_path, extra=saved)}, last)
    before = last.read_bytes()
    with pytest.raises(ResumeRefusedError) as info:
        train(tiny_config(tmp_path, extra=now), data_root=tmp_path / "no data here", resume=True)  # data: an error
    message = str(info.value)
    key, old = saved[0].split("=")
    assert f"{last} saved the state of another optimizer or schedule ({key}: {old} -> {now[0].split('=')[1]}); " \
           f"set {saved[0]} to continue it" in message and ANOTHER_NAME in message and "\n" not in message
    assert last.read_bytes() == before


def test_resume_from_a_crafted_pickle_is_refused_before_the_data_is_read(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    last = tmp_path / "models" / "GRUCell" / "last.pth"
    last.parent.mkdir(parents=True)
    torch.save({"config": Payload()}, last)
    with pytest.raises(CheckpointReadError, match=f"^{last}: a torch file of other Python objects"):
        train(tiny_config(tmp_path), data_root=tmp_path / "no data here", resume=True)
    assert not (tmp_path / "ran").exists()

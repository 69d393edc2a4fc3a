"""src/training/checkpoint.py: atomic writes, plain torch.load, RNG round trips, model rebuilding."""
import errno
import hashlib
import json
import os
import random
import re
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from src.config import load_config
from src.data.sources.kth import ACTIONS
from src.files import remove_temp_files
from src.nets.classifier import build_model
from src.training.checkpoint import (
    CheckpointReadError,
    CheckpointWriteError,
    damaged_record,
    get_rng_states,
    load_checkpoint,
    load_model,
    save_checkpoint,
    set_rng_states,
)

SMALL_MODEL = {"emb_dim": 8, "hidden_dim": 8, "num_layers": 1}
KTH = {"classes": list(ACTIONS), "channels": 1}  # what load_model needs besides the config and the weights


def small_config():
    config = load_config("configs/GRUCell.yaml")
    config["model"].update(SMALL_MODEL)
    return config


def draw_all():
    """One draw from every generator the project uses."""
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_states_survive_a_plain_torch_load(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    save_checkpoint({"rng_states": get_rng_states()}, tmp_path / "rng.pth")
    expected = draw_all()
    draw_all()
    set_rng_states(torch.load(tmp_path / "rng.pth")["rng_states"])  # weights_only=True by default
    assert draw_all() == expected


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_checkpoint({"epoch": 1}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temp file left

    def fail_half_way(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", fail_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    assert torch.load(path)["epoch"] == 1  # the old checkpoint is untouched ...
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # ... and the half-written one is gone


def fake_torch_save(error: OSError):
    """A torch.save that writes part of the file, then fails as torch's stream writer does when a
    write fails (the OSError as the context of a RuntimeError)."""
    def save(obj, f, *args, **kwargs):
        f.write(b"part of a checkpoint")
        try:
            raise error
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None
    return save


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device"), (errno.EFBIG, "File too large"),
                                          (errno.EACCES, "Permission denied")])
def test_a_failed_write_is_one_error_naming_the_file_and_the_kept_epoch(tmp_path, monkeypatch, code, reason):
    path = tmp_path / "last.pth"
    save_checkpoint({"epoch": 3}, path)
    before = hashlib.sha1(path.read_bytes()).hexdigest()
    monkeypatch.setattr(torch, "save", fake_torch_save(OSError(code, os.strerror(code))))
    with pytest.raises(CheckpointWriteError) as info:
        save_checkpoint({"epoch": 4}, path)
    assert str(info.value) == (f"{path}: could not write the checkpoint ({reason}); "
                               f"the previous last.pth (epoch 3) was kept")
    assert hashlib.sha1(path.read_bytes()).hexdigest() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # the temp file is gone
    with pytest.raises(CheckpointWriteError, match=r"best.pth: could not write .*; there was no previous best.pth"):
        save_checkpoint({"epoch": 4}, tmp_path / "best.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_a_folder_that_cannot_be_made_is_a_write_error_and_other_errors_stay_what_they_are(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointWriteError, match=r"file/run/last.pth: could not write the checkpoint \(Not a dir"):
        save_checkpoint({"epoch": 1}, tmp_path / "file" / "run" / "last.pth")

    def unpicklable(obj, f, *args, **kwargs):
        raise RuntimeError("not a write failure")
    monkeypatch.setattr(torch, "save", unpicklable)
    with pytest.raises(RuntimeError, match="not a write failure"):
        save_checkpoint({"epoch": 1}, tmp_path / "last.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_temp_files_are_unique_to_their_writer(tmp_path, monkeypatch):
    names, save = [], torch.save

    def recording_save(obj, f, *args, **kwargs):
        names.append(Path(f.name).name)
        save(obj, f, *args, **kwargs)
    monkeypatch.setattr(torch, "save", recording_save)
    for _ in range(2):
        save_checkpoint({"epoch": 1}, tmp_path / "last.pth")
    assert len(set(names)) == 2
    assert all(name.startswith(f".last.pth.{socket.gethostname()}.{os.getpid()}.") and name.endswith(".tmp")
               for name in names)
    (tmp_path / names[0]).write_bytes(b"left by a writer killed mid-write")
    remove_temp_files(tmp_path, "*.pth")  # as the trainer calls it on its run folder
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_load_model_rebuilds_from_the_checkpoint_alone(tmp_path):
    config = small_config()
    torch.manual_seed(0)
    model = build_model(config["model"], 6).eval()
    save_checkpoint({"model_state_dict": model.state_dict(), "config": config, **KTH}, tmp_path / "best.pth")

    rebuilt, checkpoint = load_model(tmp_path / "best.pth")
    assert checkpoint["config"] == config
    assert not rebuilt.training
    clips = torch.rand(2, 4, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(clips), model(clips))

    # and the ad-hoc notebook way
    fresh = build_model(config["model"], 6)
    fresh.load_state_dict(torch.load(tmp_path / "best.pth")["model_state_dict"])


def test_a_checkpoint_without_classes_or_channels_is_refused_in_one_line(tmp_path):
    config = small_config()
    save_checkpoint({"model_state_dict": build_model(config["model"], 6).state_dict(), "config": config},
                    tmp_path / "best.pth")
    with pytest.raises(CheckpointReadError, match="a torch file without 'classes' or 'channels', not a checkpoint"):
        load_model(tmp_path / "best.pth")


def test_load_model_builds_the_checkpoints_classes_and_channels(tmp_path):
    config = small_config()
    classes = ["wave", "clap", "box", "walk"]
    torch.manual_seed(0)
    model = build_model(config["model"], len(classes), in_channels=3).eval()
    save_checkpoint({"model_state_dict": model.state_dict(), "config": config, "classes": classes, "channels": 3},
                    tmp_path / "best.pth")
    rebuilt, checkpoint = load_model(tmp_path / "best.pth")
    assert (checkpoint["classes"], checkpoint["channels"]) == (classes, 3)
    clips = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(clips), model(clips)) and rebuilt(clips).shape == (2, 4)
    # classes that do not match the weights' head: one line, as for any weights that do not fit
    save_checkpoint({"model_state_dict": model.state_dict(), "config": config, "classes": classes[:3], "channels": 3},
                    tmp_path / "wrong.pth")
    with pytest.raises(CheckpointReadError, match="its weights do not fit") as info:
        load_model(tmp_path / "wrong.pth")
    assert "\n" not in str(info.value)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'GRUCell' / 'best.pth'}: no checkpoint there"):
        load_checkpoint(tmp_path / "GRUCell" / "best.pth")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointReadError, match=f"{tmp_path / 'broken.pth'}: a file torch cannot read, not a "
                                                  f"checkpoint") as info:
        load_checkpoint(tmp_path / "broken.pth")
    assert "\n" not in str(info.value) and "delete" not in str(info.value)


def foreign_files(run: Path) -> dict[str, tuple[Path, str]]:
    """Files a careless user gives as a checkpoint, in the run folder ``run`` (which holds a good
    best.pth), each with the words its error must contain."""
    (run / "results.json").write_text(json.dumps({"experiment": "GRUCell", "checkpoint": "models/GRUCell/best.pth",
                                                  "clip_accuracy": 0.5}))
    (run / "empty.pth").touch()
    (run / "truncated.pth").write_bytes((run / "best.pth").read_bytes()[:300])
    torch.save(torch.nn.Linear(2, 2), run / "whole_model.pth")
    (run / "model.onnx").write_bytes(b"\x08\x07")
    (run / "GRUCell.yaml").write_text("base: base.yaml\n")
    torch.save([1, 2], run / "a_list.pth")
    torch.save({"weights": torch.zeros(2)}, run / "a_dict.pth")
    return {"results.json": (run / "results.json", "the results of an evaluation"),
            "folder": (run, "a folder"),
            "empty": (run / "empty.pth", "an empty file"),
            "truncated": (run / "truncated.pth", "a truncated or damaged torch file"),
            "whole model": (run / "whole_model.pth", "a torch file of other Python objects"),
            "onnx": (run / "model.onnx", "an ONNX export"),
            "config": (run / "GRUCell.yaml", "a config file"),
            "list": (run / "a_list.pth", "holding a list"),
            "dict without config": (run / "a_dict.pth", "without 'config' or 'model_state_dict'")}


def test_a_file_that_is_no_checkpoint_is_one_line_saying_what_it_is_and_what_to_give(tmp_path):
    run = tmp_path / "models" / "GRUCell"
    config = small_config()
    save_checkpoint({"model_state_dict": build_model(config["model"], 6).state_dict(), "config": config, **KTH},
                    run / "best.pth")
    for kind, (path, what) in foreign_files(run).items():
        with pytest.raises(CheckpointReadError) as info:
            load_model(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and what in message, (kind, message)
        assert f"give {run / 'best.pth'}" in message, (kind, message)  # the good checkpoint beside it
        assert "\n" not in message and "delete" not in message, (kind, message)


def test_a_device_this_machine_lacks_is_refused_before_the_file_is_read(tmp_path, monkeypatch):
    """Not 'unreadable, delete it': the device is named, and the good checkpoint is untouched."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    save_checkpoint({"epoch": 1}, tmp_path / "last.pth")
    before = (tmp_path / "last.pth").read_bytes()
    for device in ("cuda", "cuda:1", "foo", torch.device("cuda")):
        with pytest.raises(ValueError, match="map_location must be a device of this machine") as info:
            load_checkpoint(tmp_path / "last.pth", map_location=device)
        assert str(device) in str(info.value) and "last.pth" not in str(info.value)
    assert (tmp_path / "last.pth").read_bytes() == before
    assert load_checkpoint(tmp_path / "last.pth", map_location="auto")["epoch"] == 1


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_one_line(tmp_path):
    config = small_config()
    weights = build_model(config["model"], 6).state_dict()
    config["model"]["hidden_dim"] = 16
    save_checkpoint({"model_state_dict": weights, "config": config, **KTH}, tmp_path / "best.pth")
    with pytest.raises(CheckpointReadError, match="its weights do not fit the model its config describes") as info:
        load_model(tmp_path / "best.pth")
    assert "\n" not in str(info.value)


def test_load_model_needs_no_pretrained_weights_file(tmp_path, monkeypatch):
    empty_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(empty_home))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(empty_home / "hub"))
    config = load_config("configs/LSTMCell_PretEncoder.yaml")
    config["model"].update(SMALL_MODEL)
    assert config["model"]["pretrained"]
    trained = build_model({**config["model"], "pretrained": False}, 6)
    save_checkpoint({"model_state_dict": trained.state_dict(), "config": config, **KTH}, tmp_path / "best.pth")
    model, _ = load_model(tmp_path / "best.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))


def test_for_inference_drops_only_what_resuming_reads():
    from src.training.checkpoint import RESUME_ONLY_KEYS, for_inference

    weights = {"w": torch.ones(2)}
    checkpoint = {"model_state_dict": weights, "config": {"a": 1}, "metrics": {"best": {}}, "classes": ["x"],
                  "ema": {"decay": 0.9, "updates": 7, "trained_state_dict": {"w": torch.zeros(2)}},
                  **{key: {"state": 1} for key in RESUME_ONLY_KEYS}}
    slim = for_inference(checkpoint)
    assert set(slim) == {"model_state_dict", "config", "metrics", "classes", "ema"}
    assert slim["ema"] == {"decay": 0.9, "updates": 7} and slim["model_state_dict"] is weights
    assert "trained_state_dict" in checkpoint["ema"] and set(RESUME_ONLY_KEYS) <= set(checkpoint)  # unchanged
    assert for_inference({"model_state_dict": weights, "ema": None})["ema"] is None  # a run without EMA


def damage(path: Path, count: int = 256) -> str:
    """Flip ``count`` bytes inside the largest tensor record of the torch archive at ``path`` (a corrupted copy, as
    issue 34 made it); returns that record's name. The archive's own structure stays intact."""
    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    start = record.header_offset + 30 + len(record.filename.encode()) + len(record.extra) + record.file_size // 2
    data[start:start + count] = bytes(byte ^ 0xFF for byte in data[start:start + count])
    path.write_bytes(bytes(data))
    return record.filename


@pytest.mark.parametrize("count", [256, 16])
def test_a_damaged_checkpoint_is_refused_on_every_load_naming_the_file_and_the_record(tmp_path, count):
    config = small_config()
    path = save_checkpoint({"model_state_dict": build_model(config["model"], 6).state_dict(), "config": config,
                            **KTH}, tmp_path / "models" / "GRUCell" / "best.pth")
    assert damaged_record(path) is None
    record = damage(path, count)
    assert torch.load(path, weights_only=True)  # torch itself reads the damaged weights without a word
    for load in (load_checkpoint, load_model):
        with pytest.raises(CheckpointReadError, match=f"^{re.escape(str(path))}: a damaged checkpoint \\(its "
                                                      f"record {re.escape(record)} fails") as info:
            load(path)
        assert "\n" not in str(info.value)


def test_the_committed_checkpoint_passes_the_integrity_check():
    path = Path(__file__).resolve().parents[1] / "models" / "GRUCell" / "best.pth"
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    assert damaged_record(path) is None
    load_model(path)
    assert hashlib.sha1(path.read_bytes()).hexdigest() == digest  # read, never rewritten


@pytest.mark.parametrize("change, words", [
    ({"model": {"hidden_dim": 100000}}, ("'model.hidden_dim' is 100,000", "more than this machine's")),
    ({"data": {"img_size": 0}}, ("'data.img_size' must be >= 1", "got 0")),
    ({"model": {"rnn_type": "GRU"}}, ("'model.rnn_type' must be one of",)),
    ({"train": {"lr": "fast"}}, ("'train.lr' must be float",)),
    ({"model": {"cells": 3}}, ("unknown key 'model.cells'",)),
])
def test_a_checkpoints_own_config_is_checked_as_a_files_naming_the_checkpoint(tmp_path, change, words):
    config = small_config()
    weights = build_model(config["model"], 6).state_dict()
    for section, values in change.items():
        config[section].update(values)
    path = save_checkpoint({"model_state_dict": weights, "config": config, **KTH}, tmp_path / "GRUCell" / "best.pth")
    with pytest.raises(CheckpointReadError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path} (its config): ") and "\n" not in message
    assert all(word in message for word in words), message


def test_a_checkpoints_device_is_not_this_machines_concern(tmp_path):
    config = small_config()
    config["train"]["device"] = "cuda:7"  # trained elsewhere
    path = save_checkpoint({"model_state_dict": build_model(config["model"], 6).state_dict(), "config": config,
                            **KTH}, tmp_path / "best.pth")
    load_model(path)

"""src/checkpoint.py: atomic writes, plain torch.load, RNG round trips, model rebuilding."""
import random

import numpy as np
import pytest
import torch

from src.checkpoint import get_rng_states, load_checkpoint, load_model, save_checkpoint, set_rng_states
from src.classifier import build_model
from src.config import load_config

SMALL_MODEL = {"emb_dim": 8, "hidden_dim": 8, "num_layers": 1}


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


def test_load_model_rebuilds_from_the_checkpoint_alone(tmp_path):
    config = small_config()
    torch.manual_seed(0)
    model = build_model(config["model"]).eval()
    save_checkpoint({"model_state_dict": model.state_dict(), "config": config}, tmp_path / "best.pth")

    rebuilt, checkpoint = load_model(tmp_path / "best.pth")
    assert checkpoint["config"] == config
    assert not rebuilt.training
    clips = torch.rand(2, 4, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(clips), model(clips))

    # and the ad-hoc notebook way
    fresh = build_model(config["model"])
    fresh.load_state_dict(torch.load(tmp_path / "best.pth")["model_state_dict"])


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'GRUCell' / 'best.pth'}: no checkpoint there"):
        load_checkpoint(tmp_path / "GRUCell" / "best.pth")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=f"{tmp_path / 'broken.pth'}: not a readable checkpoint") as info:
        load_checkpoint(tmp_path / "broken.pth")
    assert "\n" not in str(info.value)


def test_load_model_needs_no_pretrained_weights_file(tmp_path, monkeypatch):
    empty_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(empty_home))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(empty_home / "hub"))
    config = load_config("configs/LSTMCell_PretEncoder.yaml")
    config["model"].update(SMALL_MODEL)
    assert config["model"]["pretrained"]
    trained = build_model({**config["model"], "pretrained": False})
    save_checkpoint({"model_state_dict": trained.state_dict(), "config": config}, tmp_path / "best.pth")
    model, _ = load_model(tmp_path / "best.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))

"""Shared fixtures: the real KTH samples (skipped when absent) and the tiny synthetic twin."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
KTH_SAMPLES = Path(os.environ.get("KTH_SAMPLES", REPO.parent / "shared" / "kth_samples"))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def kth_samples() -> Path:
    """The folder of real KTH videos and 00sequences.txt (see its README)."""
    if not (KTH_SAMPLES / "00sequences.txt").is_file():
        pytest.skip(f"real KTH samples not found at {KTH_SAMPLES} (set KTH_SAMPLES to the folder)")
    return KTH_SAMPLES


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    """The tiny synthetic twin, raw: KTH-named AVIs and 00sequences.txt."""
    from src.data.synthetic import generate
    out = tmp_path_factory.mktemp("synth_raw_tiny")
    generate(out, preset="tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_prepared(tiny_raw, tmp_path_factory) -> Path:
    """The tiny synthetic twin, prepared (index.json, cache, PNG tree)."""
    from src.data.prepare import prepare
    out = tmp_path_factory.mktemp("synth_tiny")
    prepare(tiny_raw, out, workers=1)
    return out


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty temporary TORCH_HOME; returns the folder torchvision caches weights in.
    Downloads of pretrained weights go to a closed local port, so they fail at once, offline or not."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PRETRAINED_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # restored after the test
    torch.hub.set_dir(str(tmp_path / "hub"))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


@pytest.fixture(scope="session")
def tiny_unmarked(tiny_prepared, tmp_path_factory) -> Path:
    """The tiny twin's frames prepared as if they were real KTH: index.json without the
    synthetic marker (the cache is a link to the tiny twin's)."""
    import json
    out = tmp_path_factory.mktemp("kth_unmarked")
    index = json.loads((tiny_prepared / "index.json").read_text())
    index["synthetic"] = False
    index.pop("synthetic_preset", None)
    (out / "index.json").write_text(json.dumps(index))
    (out / "cache").symlink_to(tiny_prepared / "cache")
    return out

"""src/training/provenance.py: the data fingerprint, and when a saved result or checkpoint may stand for a run."""
import re
import shutil

import numpy as np
import pytest

from src.config import load_config
from src.training.engine import select_device, training_precision
from src.training.provenance import (
    code_version,
    config_differences,
    data_fingerprint,
    data_label,
    describe_data,
    results_mismatch,
    resume_refusal,
)


@pytest.fixture
def copy_of_tiny(tiny_prepared, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(tiny_prepared, out, ignore=shutil.ignore_patterns("*.png"))
    return out


def test_fingerprint_follows_the_frames_not_the_folder(tiny_prepared, copy_of_tiny, tiny_unmarked):
    assert data_fingerprint(copy_of_tiny) == data_fingerprint(tiny_prepared)
    assert data_fingerprint(tiny_unmarked) != data_fingerprint(tiny_prepared)  # real KTH is other data
    frames_path = sorted((copy_of_tiny / "cache").glob("*.npy"))[3]
    frames = np.load(frames_path)
    frames[0, 0, 0] ^= 1  # one pixel of one frame
    np.save(frames_path, frames)
    assert data_fingerprint(copy_of_tiny) != data_fingerprint(tiny_prepared)


def test_describe_data_names_the_source(tiny_prepared, tiny_unmarked):
    synthetic, real = describe_data(tiny_prepared), describe_data(tiny_unmarked)
    assert (synthetic["synthetic"], synthetic["preset"]) == (True, "tiny")
    assert data_label(synthetic) == "the synthetic twin (preset tiny)"
    assert (real["synthetic"], real["preset"], data_label(real)) == (False, None, "real KTH")
    assert re.fullmatch(r"sha1:[0-9a-f]{40}", real["fingerprint"])


def test_a_broken_index_is_named(copy_of_tiny):
    index = copy_of_tiny / "index.json"
    index.write_bytes(index.read_bytes()[:100])
    for describe in (describe_data, data_fingerprint):
        with pytest.raises(ValueError, match=rf"^{re.escape(str(index))}: not a prepared-dataset index"):
            describe(copy_of_tiny)


def test_code_version_is_a_commit_or_unknown():
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", code_version())


def test_results_are_reused_only_on_the_same_data_and_config(tiny_prepared, tiny_unmarked):
    config = load_config("configs/GRUCell.yaml")
    synthetic, real = describe_data(tiny_prepared), describe_data(tiny_unmarked)
    precision = training_precision(config["train"]["amp"], select_device(config["train"]["device"]))
    results = {"config": config, "provenance": {"data": synthetic, "train_data": synthetic,
                                                "train_precision": precision}}
    assert results_mismatch(results, load_config("configs/GRUCell.yaml", ["log.models_dir=elsewhere"]),
                            synthetic) is None
    assert results_mismatch(results, config, real) == \
        f"results.json was made on {tiny_prepared} (synthetic), now {tiny_unmarked} (real KTH)"
    changed = load_config("configs/GRUCell.yaml", ["train.epochs=3"])
    assert results_mismatch(results, changed, synthetic) == \
        "results.json was made with another config (train.epochs: 30 -> 3)"
    assert results_mismatch({"config": config}, config, synthetic) == \
        "results.json has no provenance (made by older code)"
    assert config_differences(config, load_config("configs/OwnGRU.yaml")) == ["model.rnn_type: GRUCell -> OwnGRU"]


def test_results_are_compared_by_the_precision_train_amp_gives(tiny_prepared, monkeypatch):
    """train.amp is compared as the precision it gives here: a float32 result of record (train.amp true,
    before 'auto', on a CPU) stands for an 'auto' run on a CPU without native bf16, not on one with it."""
    import src.training.engine

    config = load_config("configs/GRUCell.yaml", ["train.device=cpu"])
    synthetic = describe_data(tiny_prepared)
    old = {"config": {**config, "train": {**config["train"], "amp": True}},
           "provenance": {"data": synthetic, "train_data": synthetic, "train_amp": False}}  # no train_precision
    monkeypatch.setattr(src.training.engine, "native_bf16", lambda: False)
    assert results_mismatch(old, config, synthetic) is None
    monkeypatch.setattr(src.training.engine, "native_bf16", lambda: True)
    assert results_mismatch(old, config, synthetic) == \
        "results.json was made in float32, the run would train in bfloat16 (train.amp auto)"
    made_in_bf16 = {**old, "provenance": {**old["provenance"], "train_precision": "bfloat16"}}
    assert results_mismatch(made_in_bf16, config, synthetic) is None


def test_resume_is_refused_on_other_data_or_architecture_only(tiny_prepared, tiny_unmarked):
    config = load_config("configs/GRUCell.yaml")
    synthetic, real = describe_data(tiny_prepared), describe_data(tiny_unmarked)
    checkpoint = {"config": config, "provenance": {"data": synthetic}}
    assert resume_refusal(checkpoint, load_config("configs/GRUCell.yaml", ["train.lr=0.01"]), synthetic, "last.pth") \
        is None
    assert "now" in resume_refusal(checkpoint, config, real, "m/last.pth")
    assert resume_refusal(checkpoint, load_config("configs/OwnGRU.yaml"), synthetic, "m/last.pth") == \
        "m/last.pth has another model architecture (model.rnn_type: GRUCell -> OwnGRU)"
    older = {"config": config, "data_root": str(tiny_prepared), "synthetic": True}  # no provenance yet
    assert resume_refusal(older, config, synthetic, "last.pth") is None
    assert "(real KTH)" in resume_refusal(older, config, real, "last.pth")

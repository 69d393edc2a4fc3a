"""src/training/provenance.py: the data fingerprint, the split record, and when a saved result or checkpoint may
stand for a run."""
import json
import re
import shutil
import warnings

import numpy as np
import pytest

from src.config import load_config
from src.data.dataset import VideoClipDataset
from src.data.index import V1_ENTRY_KEYS
from src.training.device import select_device, training_precision
from src.training.provenance import (
    code_version,
    config_differences,
    data_fingerprint,
    data_label,
    describe_data,
    groups_of,
    results_mismatch,
    resume_refusal,
    split_record,
    where,
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


def test_a_kth_fingerprint_is_the_one_of_its_index_before_classes(copy_of_tiny):
    """index.json of KTH in gray is fingerprinted by the keys of its entries before classes (version 1's): results
    made before keep theirs; the keys added since (file, class, group) do not count, the frames' do."""
    fingerprint = data_fingerprint(copy_of_tiny)
    index = json.loads((copy_of_tiny / "index.json").read_text())
    added = sorted(set(index["videos"][0]) - set(V1_ENTRY_KEYS))
    assert added == ["class", "file", "group"]
    index["videos"][0].update(file="moved/elsewhere.avi", group="someone")
    (copy_of_tiny / "index.json").write_text(json.dumps(index))
    assert data_fingerprint(copy_of_tiny) == fingerprint
    index["videos"][0]["sequences"] = [[0, 5]]
    (copy_of_tiny / "index.json").write_text(json.dumps(index))
    assert data_fingerprint(copy_of_tiny) != fingerprint


def test_describe_data_names_the_source(tiny_prepared, tiny_unmarked):
    synthetic, real = describe_data(tiny_prepared), describe_data(tiny_unmarked)
    assert (synthetic["synthetic"], synthetic["preset"], synthetic["source"], synthetic["channels"]) == \
        (True, "tiny", "kth", 1)
    assert data_label(synthetic) == "the synthetic twin (preset tiny)"
    assert (real["synthetic"], real["preset"], data_label(real)) == (False, None, "real KTH")
    assert re.fullmatch(r"sha1:[0-9a-f]{40}", real["fingerprint"])
    assert data_label({**real, "source": "folder"}) == "a video folder"
    assert where({**real, "source": "ucf101"}) == f"{tiny_unmarked} (UCF101-layout data)"
    assert data_label({"root": "x", "synthetic": False}) == "real KTH"  # recorded before sources


def test_the_split_record_holds_the_groups_as_loaded(tiny_prepared):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny twin's short subsequences
        sets = {split: VideoClipDataset(tiny_prepared, split=split, max_frames=4, protocol={})
                for split in ("train", "val", "test")}
    assert [groups_of(sets[split]) for split in ("train", "val", "test")] == [[1, 2], [15], [17]]
    trained = split_record({"train": sets["train"], "val": sets["val"]})
    assert trained == {"split": {"protocol": "course", "fold": None, "groups": {"train": [1, 2], "val": [15]}},
                       "persons": {"train": [1, 2], "val": [15]}}
    tested = split_record({"test": sets["test"]}, trained=trained)
    assert tested["split"]["groups"] == tested["persons"] == {"train": [1, 2], "val": [15], "test": [17]}


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
    # how fast the batches are made is no difference: a result made on the main thread stands with prefetching
    speed = load_config("configs/GRUCell.yaml", ["data.prefetch=false", "data.num_workers=2"])
    assert speed["data"]["prefetch"] != config["data"]["prefetch"]
    assert config_differences(config, speed) == [] and results_mismatch(results, speed, synthetic) is None
    older = {**config, "data": {k: v for k, v in config["data"].items() if k not in ("split", "channels", "groups")}}
    assert results_mismatch({**results, "config": older}, config, synthetic) is None  # keys older code lacked
    assert config_differences(older, load_config("configs/GRUCell.yaml", ["data.split=schuldt2004"])) == \
        ["data.split: auto -> schuldt2004"]


def test_under_train_amp_auto_a_result_stands_in_any_precision_and_an_explicit_one_must_match(tiny_prepared,
                                                                                               monkeypatch):
    """train.amp auto leaves the precision to the machine: the float32 results of record (train.amp true before
    'auto', on a CPU) stand for an 'auto' run on a CPU with native bf16 too (a fresh clone there must not train
    them again). train.amp false or true is compared as the precision it gives here."""
    import src.training.device

    config = load_config("configs/GRUCell.yaml", ["train.device=cpu"])
    assert config["train"]["amp"] == "auto"
    synthetic = describe_data(tiny_prepared)
    old = {"config": {**config, "train": {**config["train"], "amp": True}},
           "provenance": {"data": synthetic, "train_data": synthetic, "train_precision": "float32"}}
    made_in_bf16 = {**old, "provenance": {**old["provenance"], "train_precision": "bfloat16"}}
    float32, bfloat16 = (load_config("configs/GRUCell.yaml", ["train.device=cpu", f"train.amp={amp}"])
                         for amp in ("false", "true"))
    for native in (False, True):
        monkeypatch.setattr(src.training.device, "native_bf16", lambda: native)
        assert results_mismatch(old, config, synthetic) is None
        assert results_mismatch(made_in_bf16, config, synthetic) is None
        assert results_mismatch(old, float32, synthetic) is None
        assert results_mismatch(made_in_bf16, bfloat16, synthetic) is None
        assert results_mismatch(made_in_bf16, float32, synthetic) == \
            "results.json was made in bfloat16, the run would train in float32 (train.amp False)"
        assert results_mismatch(old, bfloat16, synthetic) == \
            "results.json was made in float32, the run would train in bfloat16 (train.amp True)"


def test_resume_is_refused_on_other_data_or_architecture_only(tiny_prepared, tiny_unmarked):
    config = load_config("configs/GRUCell.yaml")
    synthetic, real = describe_data(tiny_prepared), describe_data(tiny_unmarked)
    checkpoint = {"config": config, "provenance": {"data": synthetic}}
    assert resume_refusal(checkpoint, load_config("configs/GRUCell.yaml", ["train.lr=0.01"]), synthetic, "last.pth") \
        is None
    assert "now" in resume_refusal(checkpoint, config, real, "m/last.pth")
    assert resume_refusal(checkpoint, load_config("configs/OwnGRU.yaml"), synthetic, "m/last.pth") == \
        "m/last.pth has another model architecture (model.rnn_type: GRUCell -> OwnGRU)"

"""src/data/index.py: finding the prepared data, and reading its index (version 2)."""
import json
import logging
import shutil

import pytest

from src.data.index import read_index, resolve_data_root
from src.data.sources.kth import ACTIONS

GOOD = {"version": 2, "source": "kth", "size": 64, "channels": 1, "synthetic": True, "classes": list(ACTIONS),
        "group_kind": "person", "folds": [], "videos": [
            {"video_id": "person01_boxing_d1", "file": "boxing/person01_boxing_d1_uncomp.avi", "label": 3,
             "class": "boxing", "group": 1, "person": 1, "action": "boxing", "scenario": 1, "num_frames": 9,
             "sequences": [[0, 9]]}], "failed": []}


GOOD_V2 = {"version": 2, "source": "folder", "size": 32, "channels": 3, "synthetic": False, "classes": ["clap", "wave"],
           "group_kind": "groups.csv", "folds": ["1"], "videos": [
               {"video_id": "wave/my clip é", "file": "wave/my clip é.mp4", "label": 1, "class": "wave",
                "group": "anna", "num_frames": 12, "sequences": [[0, 12]], "split": {"1": "test"}}], "failed": []}


def test_a_version_2_index_is_read_as_it_is(tmp_path):
    for good in (GOOD, GOOD_V2):
        (tmp_path / "index.json").write_text(json.dumps(good))
        assert read_index(tmp_path) == good


def _v2_video(**changes) -> str:
    return json.dumps({**GOOD_V2, "videos": [{**GOOD_V2["videos"][0], **changes}]})


@pytest.mark.parametrize("text, what", [
    (json.dumps({**GOOD_V2, "version": 3}), "version 3, not 2, the version this code reads"),
    (json.dumps({**GOOD_V2, "version": 1}), "version 1, not 2"),  # KTH's index before classes: prepare again
    (json.dumps({k: v for k, v in GOOD_V2.items() if k != "classes"}), "no key 'classes'"),
    (json.dumps({**GOOD_V2, "channels": 2}), "channels is 2, not 1 or 3"),
    (json.dumps({**GOOD_V2, "classes": ["wave", "wave"]}), "not a list of distinct names"),
    (_v2_video(label=2), "wave/my clip é: label 2 is not a class number 0..1"),
    (_v2_video(label=0), "wave/my clip é: class 'wave' is not classes[0] = 'clap'"),
    (_v2_video(group=[1]), "group [1] is not a number or a name"),
    (_v2_video(split={"2": "test"}), "split {'2': 'test'} is not {fold: 'train' | 'test'} of the folds ['1']"),
    (json.dumps({**GOOD_V2, "videos": [{k: v for k, v in GOOD_V2["videos"][0].items() if k != "class"}]}),
     "wave/my clip é lacks the key 'class'"),
    (json.dumps({**GOOD, "videos": [{**GOOD["videos"][0], "label": 0}]}), "class 'boxing' is not classes[0] = "
                                                                          "'walking'"),
])
def test_a_broken_version_2_index_is_one_line_naming_it(tmp_path, text, what):
    (tmp_path / "index.json").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as error:
        read_index(tmp_path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'index.json'}: not a prepared-dataset index (")
    assert what in message


def test_resolve_data_root_rejects_an_unprepared_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.json missing"):
        resolve_data_root(tmp_path)


@pytest.mark.parametrize("text, what", [
    (json.dumps(GOOD)[:70], "invalid JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    (json.dumps({**GOOD, "size": 0}), "size is 0"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "videos"}), "no key 'videos'"),
    (json.dumps({**GOOD, "videos": [{**GOOD["videos"][0], "num_frames": 0}]}), "num_frames is 0"),
    (json.dumps({**GOOD, "videos": [{k: v for k, v in GOOD["videos"][0].items() if k != "sequences"}]}),
     "person01_boxing_d1 lacks the key 'sequences'"),
])
def test_a_broken_index_is_one_line_naming_it(tmp_path, text, what):
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(ValueError) as error:
        read_index(tmp_path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'index.json'}: not a prepared-dataset index (")
    assert what in message and f"--out {tmp_path}'" in message
    with pytest.raises(ValueError, match="not a prepared-dataset index"):  # the same, before any data is read
        resolve_data_root(tmp_path)


def test_an_index_without_videos_is_not_a_prepared_dataset(tmp_path):
    (tmp_path / "index.json").write_text(json.dumps({**GOOD, "videos": []}))
    assert read_index(tmp_path)["videos"] == []
    with pytest.raises(FileNotFoundError, match=r"index.json: lists no videos \(left by a failed prepare\)"):
        resolve_data_root(tmp_path)


def test_auto_takes_the_synthetic_twin_over_a_real_kth_without_videos(tmp_path, tiny_prepared, monkeypatch, caplog):
    (tmp_path / "data" / "kth").mkdir(parents=True)
    (tmp_path / "data" / "kth" / "index.json").write_text(json.dumps({**GOOD, "synthetic": False, "videos": []}))
    (tmp_path / "data" / "synth_tiny").mkdir()
    shutil.copy(tiny_prepared / "index.json", tmp_path / "data" / "synth_tiny")  # what 'auto' looks at
    monkeypatch.chdir(tmp_path)
    root, synthetic = resolve_data_root("auto", preset="tiny")
    assert (str(root), synthetic) == ("data/synth_tiny", True)
    notes = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(notes) == 1 and notes[0].startswith("note: data/kth/index.json lists no videos")
    assert "using the synthetic twin" in notes[0]
    (tmp_path / "data" / "kth" / "index.json").write_text("{")  # a broken real KTH is not silently passed over
    with pytest.raises(ValueError, match=r"^data/kth/index.json: not a prepared-dataset index"):
        resolve_data_root("auto", preset="tiny")


def test_config_for_data_takes_the_datas_channels_for_auto(tmp_path):
    """data.channels auto becomes the prepared data's channels (what the trainer and the suite save and compare);
    3 of gray data is refused in one line naming the key, the value and the data's channels."""
    import copy

    from src.config import ConfigError, load_config
    from src.data.index import config_for_data, with_channels

    (tmp_path / "index.json").write_text(json.dumps(GOOD_V2))  # channels 3
    config = load_config("configs/GRUCell.yaml")
    kept = copy.deepcopy(config)
    assert config_for_data(config, tmp_path)["data"]["channels"] == 3 and config == kept  # a copy
    assert with_channels(load_config("configs/GRUCell.yaml", ["data.channels=1"]), 3)["data"]["channels"] == 1
    (tmp_path / "index.json").write_text(json.dumps({**GOOD_V2, "channels": 1}))
    assert config_for_data(config, tmp_path)["data"]["channels"] == 1
    with pytest.raises(ConfigError) as error:
        config_for_data(load_config("configs/GRUCell.yaml", ["data.channels=3"]), tmp_path)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(f"data.channels: 3 (colour), but {tmp_path / 'index.json'} holds grayscale "
                                       f"frames (channels 1)")

"""src/data/prepared.py: finding the prepared data, and reading its index."""
import json
import shutil

import pytest

from src.data.prepared import read_index, resolve_data_root

GOOD = {"version": 1, "size": 64, "synthetic": True, "videos": [
    {"video_id": "person01_boxing_d1", "person": 1, "action": "boxing", "label": 3, "scenario": 1, "num_frames": 9,
     "sequences": [[0, 9]]}]}


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


def test_auto_takes_the_synthetic_twin_over_a_real_kth_without_videos(tmp_path, tiny_prepared, monkeypatch, capsys):
    (tmp_path / "data" / "kth").mkdir(parents=True)
    (tmp_path / "data" / "kth" / "index.json").write_text(json.dumps({**GOOD, "synthetic": False, "videos": []}))
    (tmp_path / "data" / "synth_tiny").mkdir()
    shutil.copy(tiny_prepared / "index.json", tmp_path / "data" / "synth_tiny")  # what 'auto' looks at
    monkeypatch.chdir(tmp_path)
    root, synthetic = resolve_data_root("auto", preset="tiny")
    assert (str(root), synthetic) == ("data/synth_tiny", True)
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 1 and notes[0].startswith("note: data/kth/index.json lists no videos")
    assert "using the synthetic twin" in notes[0]
    (tmp_path / "data" / "kth" / "index.json").write_text("{")  # a broken real KTH is not silently passed over
    with pytest.raises(ValueError, match=r"^data/kth/index.json: not a prepared-dataset index"):
        resolve_data_root("auto", preset="tiny")

"""``python -m src.data`` (src/data/__main__.py) called in-process, so that the fast tier (``-m "not slow"``) covers
it too; its bad arguments, one by one, as subprocesses, are in tests/test_bad_inputs_data.py (slow)."""
import json

import pytest

from src.data.__main__ import main
from tests.test_sources import make_folder


def test_prepare_writes_the_index_and_the_cache(tiny_raw, tmp_path):
    out = tmp_path / "prepared"
    main(["prepare", "--raw", str(tiny_raw), "--out", str(out), "--workers", "1", "--no-png"])
    index = json.loads((out / "index.json").read_text())
    assert len(index["videos"]) == len(list(tiny_raw.glob("*/*.avi"))) and not index.get("failed")
    assert len(list((out / "cache").iterdir())) == len(index["videos"])
    assert not list(out.rglob("*.png"))


def test_a_folder_dataset_without_out_is_one_line_and_writes_nothing(tiny_raw, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = make_folder(tiny_raw, tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["prepare", "--raw", str(raw), "--workers", "1"])
    assert info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: --out: {raw} holds a folder dataset") and error.count("\n") == 1
    assert not (tmp_path / "data").exists()

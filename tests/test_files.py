"""src/files.py: output paths refused before the work, and atomic writes through a file object or a path."""
import os
import socket

import pytest

from src.files import atomic_path, atomic_write, check_output_file, remove_temp_files, temp_path


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "made" / "here" / "results.json"  # the folders are made
    with atomic_write(path, "w") as f:
        f.write("old")
    with atomic_write(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old"  # the target changes only when the block succeeds
    assert path.read_text() == "new" and os.listdir(path.parent) == ["results.json"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temp_file(tmp_path, failure):
    path = tmp_path / "index.json"
    path.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with atomic_write(path) as f:
            f.write(b"half of the new")
            raise failure
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["index.json"]


def test_atomic_path_is_for_writers_that_take_a_path(tmp_path):
    path = tmp_path / "model.onnx"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(f".model.onnx.{socket.gethostname()}.{os.getpid()}.")
        assert tmp.name.endswith(".tmp") and not path.exists()
        tmp.write_bytes(b"model")
    assert path.read_bytes() == b"model" and os.listdir(tmp_path) == ["model.onnx"]
    with pytest.raises(OSError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half a model")
            raise OSError("disk full")
    assert path.read_bytes() == b"model" and os.listdir(tmp_path) == ["model.onnx"]


def test_temp_files_are_unique_and_the_stale_ones_removable(tmp_path):
    path = tmp_path / "last.pth"
    assert temp_path(path) != temp_path(path)
    stale = [temp_path(path), temp_path(tmp_path / "results.json")]
    for tmp in stale:
        tmp.write_bytes(b"left by a writer killed mid-write")
    (tmp_path / ".staging.x1.tmp").mkdir()  # a folder: not a temp file of these writers
    remove_temp_files(tmp_path, "*.pth")
    assert not stale[0].exists() and stale[1].exists()
    remove_temp_files(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [".staging.x1.tmp"]


def test_check_output_file_refuses_what_cannot_be_written(tmp_path):
    (tmp_path / "a_file").write_text("")
    assert check_output_file(tmp_path / "new" / "out.gif") == tmp_path / "new" / "out.gif"
    with pytest.raises(ValueError, match=r"^--gif .*: is a folder; give a file name"):
        check_output_file(tmp_path, key="--gif")
    with pytest.raises(ValueError, match=r"a_file is a file, not a folder"):
        check_output_file(tmp_path / "a_file" / "out.gif")


def test_folder_refusal_names_the_flag_and_what_to_give(tmp_path):
    from src.files import folder_refusal

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert folder_refusal("--out", None) is None and folder_refusal("--out", tmp_path / "missing") is None
    assert folder_refusal("--out", a_file) == \
        f"--out {a_file}: a file, not a folder; give a folder (it is made if missing)"
    assert folder_refusal("--configs", tmp_path / "missing", "the configs") == \
        f"--configs {tmp_path / 'missing'}: no such folder; give the folder of the configs"
    assert folder_refusal("--configs", a_file, "the configs").startswith(f"--configs {a_file}: not a folder;")
    assert folder_refusal("--configs", tmp_path, "the configs") is None

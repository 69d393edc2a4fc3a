"""src.data: finding the prepared data."""
import pytest

from src.data import resolve_data_root


def test_resolve_data_root_rejects_an_unprepared_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.json missing"):
        resolve_data_root(tmp_path)

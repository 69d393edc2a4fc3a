"""The experiments' tests take tests/conftest.py's fixtures (the tiny synthetic twin, prepared)."""
from tests.conftest import tiny_prepared, tiny_raw  # noqa: F401  (pytest finds fixtures by their names here)

"""Assignment3.ipynb runs top to bottom in its small profile (SMOKE=1)."""
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def test_notebook_runs_top_to_bottom_in_the_small_profile(monkeypatch):
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(REPO / "Assignment3.ipynb", as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.get("outputs", []))
    assert "profile: SMOKE" in outputs
    assert "OwnLSTM  vs torch.nn.LSTM" in outputs
    assert "GRUCell                          test clip accuracy" in outputs
    assert "R2Plus1D test clip accuracy" in outputs
    assert not any(output.get("output_type") == "error" for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []))

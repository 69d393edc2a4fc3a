"""Assignment3.ipynb runs top to bottom: in its small profile (SMOKE=1), and in its full profile on a
fresh clone's state (results.json files present; no checkpoint, no TensorBoard log)."""
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import src.suite
from tests.cli import snapshot

pytestmark = pytest.mark.slow  # executes Assignment3.ipynb in a Jupyter kernel (nbclient)

REPO = Path(__file__).resolve().parents[1]
RECORD = [REPO / name for name in ("results", "imgs", "tboard_logs", "models")]  # the committed outputs
# the runs the full-profile test reuses: every experiment, one epoch on the tiny twin, narrow models
SMALL = ["train.epochs=1", "train.batch_size=8", "data.train_clips_per_video=1", "data.eval_clips_per_video=2",
         "data.max_frames=4", "model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=1", "eval.latency_repeats=2"]


def execute(monkeypatch, env: dict) -> tuple[str, nbformat.NotebookNode]:
    for key in ("SMOKE", "NOTEBOOK_DATA", "NOTEBOOK_WORKDIR", "NOTEBOOK_SET", "NOTEBOOK_BENCH"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"MPLBACKEND": "Agg", **env}.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(REPO / "Assignment3.ipynb", as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not any(output.get("output_type") == "error" for output in outputs)
    text = "".join(output.get("text", "") for output in outputs)
    text += "".join(str(output.get("data", {}).get("text/markdown", "")) for output in outputs)
    return text, notebook


def test_notebook_runs_top_to_bottom_in_the_small_profile(monkeypatch):
    outputs, _ = execute(monkeypatch, {"SMOKE": "1"})
    assert "profile: SMOKE" in outputs
    assert "OwnLSTM  vs torch.nn.LSTM" in outputs
    assert "GRUCell                          test clip accuracy" in outputs
    assert "R2Plus1D test clip accuracy" in outputs


@pytest.fixture
def fresh_clone_state(tiny_prepared, tmp_path, monkeypatch, torch_home):
    """A folder as a fresh clone has it: every experiment's results.json (here from a one-epoch suite on the
    tiny twin), and neither checkpoints nor TensorBoard logs nor the table and figures."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        src.suite.main(["--configs", str(REPO / "configs"), "--seeds", "1", "--models-dir", str(work / "models"),
                        "--data", str(tiny_prepared), "--set", *SMALL, f"log.tboard_dir={work / 'tboard_logs'}"])
    except SystemExit:  # the pretrained-encoder experiments cannot get their weights offline
        pass
    monkeypatch.chdir(REPO)
    for checkpoint in (work / "models").glob("*/*.pth"):
        checkpoint.unlink()
    for folder in ("tboard_logs", "results", "imgs"):
        shutil.rmtree(work / folder, ignore_errors=True)
    return work


def test_notebook_runs_top_to_bottom_in_the_full_profile_on_a_fresh_clone(fresh_clone_state, tiny_prepared,
                                                                           monkeypatch):
    work = fresh_clone_state
    reused = sorted(path.parent.name for path in (work / "models").glob("*/results.json"))
    assert len(reused) == 9  # 11 experiments, less the two pretrained-encoder ones
    record = snapshot(*RECORD)
    outputs, notebook = execute(monkeypatch, {"NOTEBOOK_DATA": str(tiny_prepared), "NOTEBOOK_WORKDIR": str(work),
                                              "NOTEBOOK_SET": " ".join(SMALL), "TORCH_HOME": os.environ["TORCH_HOME"],
                                              "NOTEBOOK_BENCH": "--rounds 5 --conv-rounds 2"})
    assert "profile: full" in outputs and "SYNTHETIC DATA" in outputs and "preset tiny" in outputs
    assert "training again" not in outputs and not list((work / "models").glob("*/*.pth"))  # nothing trained
    assert "GRUCell                          test clip accuracy" in outputs
    assert "R2Plus1D test clip accuracy" in outputs
    assert "LSTMCell_PretEncoder             not run: pretrained weights" in outputs
    assert "Measured on the synthetic twin (preset tiny)" in outputs
    assert "test clips misclassified by" in outputs
    for figure in ("learning_curves.png", "per_class_accuracy.png", "failure_cases.png", "accuracy_vs_params.png",
                   "sample_clips.png", "augmented_clips.png", "confusion_GRUCell.png"):
        assert (work / "imgs" / figure).stat().st_size > 0, figure
    for table in ("results.md", "comparisons.md", "results.csv"):  # its compare: under NOTEBOOK_WORKDIR too
        assert (work / "results" / table).stat().st_size > 0, table
    assert snapshot(*RECORD) == record  # nothing of the repository's tables, figures, events or runs rewritten
    assert not (work / "tboard_logs").exists()


def test_the_committed_outputs_read_as_a_reader_sees_them():
    """The committed notebook as GitHub or an HTML export shows it: no error, no stderr (progress bars, warnings),
    and no absolute path of the machine that ran it (it is run as the README says: TQDM_DISABLE=1, relative
    NOTEBOOK_DATA)."""
    notebook = nbformat.read(REPO / "Assignment3.ipynb", as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert outputs, "the notebook is committed with its outputs"
    assert not [output for output in outputs if output.get("output_type") == "error"]
    stderr = [output["text"][:80] for output in outputs if output.get("name") == "stderr"]
    assert not stderr, f"{len(stderr)} stderr outputs, the first: {stderr[0]!r}"
    text = "\n".join([output.get("text", "") for output in outputs] +
                     [str(value) for output in outputs for key, value in output.get("data", {}).items()
                      if key.startswith("text/")])
    absolute = re.findall(r"(?<![\w.)\]])/(?:work|tmp|home|root|Users|mnt|var|private)/[\w./-]*", text)
    assert not absolute and str(REPO) not in text, absolute[:3]

"""src/progress.py: the library's progress bars honour TQDM_DISABLE in a notebook too (issue 33 #11)."""
import io
import json
from pathlib import Path

import tqdm.auto
import tqdm.notebook

import src.training.metrics
import src.training.trainer
from src.progress import honouring_tqdm_disable
from src.progress import tqdm as progress_tqdm


def widgets_shown(monkeypatch) -> list:
    """What tqdm.notebook hands IPython's ``display`` (its widgets), recorded instead of shown."""
    shown = []
    monkeypatch.setattr(tqdm.notebook, "display", lambda *objects, **_: shown.extend(objects))
    return shown


def test_tqdm_disable_hides_the_notebook_bars_that_tqdm_notebook_alone_draws(monkeypatch):
    shown = widgets_shown(monkeypatch)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    plain = tqdm.notebook.tqdm(range(3), desc="epoch 1 train", leave=False)  # what a notebook got: a widget
    assert not plain.disable and len(shown) == 1
    plain.close()
    shown.clear()

    bar_class = honouring_tqdm_disable(tqdm.notebook.tqdm)
    bar = bar_class(range(3), desc="epoch 1 train", leave=False, disable=False)
    assert list(bar) == [0, 1, 2]  # still iterates
    assert bar.disable and shown == [] and not hasattr(bar, "container")  # no widget made, none shown
    bar.close()

    monkeypatch.delenv("TQDM_DISABLE")  # read as each bar is made, not at import
    shown_bar = bar_class(range(3))
    assert not shown_bar.disable and len(shown) == 1
    shown_bar.close()


def test_the_library_bars_are_tqdm_autos_that_honour_it(monkeypatch):
    assert issubclass(progress_tqdm, tqdm.auto.tqdm) and progress_tqdm.write.__func__ is tqdm.auto.tqdm.write.__func__
    assert src.training.metrics.tqdm is src.training.trainer.tqdm is progress_tqdm
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_tqdm(range(2)).disable
    monkeypatch.setenv("TQDM_DISABLE", "")  # empty: not set, as tqdm reads it
    bar = progress_tqdm(range(2), file=io.StringIO())
    assert not bar.disable
    bar.close()


def test_the_committed_notebook_holds_no_progress_widget():
    """Made with TQDM_DISABLE=1 (docs/notebook.md): no widget output, and no widget state left in its metadata."""
    notebook = json.loads((Path(__file__).resolve().parents[1] / "Assignment3.ipynb").read_text(encoding="utf-8"))
    outputs = [output for cell in notebook["cells"] for output in cell.get("outputs", [])]
    assert not [output for output in outputs if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert "widgets" not in notebook["metadata"]

"""Every output goes where the user pointed (issue 17): ``src.suite --models-dir DIR`` and ``src.compare
--models-dir DIR`` write their tables, figures and TensorBoard events under DIR, never over the committed
results/, imgs/, tboard_logs/ or models/; and each bad argument of the suite or of compare gets one line
before any run starts, with nothing written."""
import shutil
from pathlib import Path

import pytest

from tests.cli import REPO, assert_one_line_error, run_cli, snapshot
from tests.test_trainer import TINY

pytestmark = pytest.mark.slow  # every test runs a CLI as a subprocess (tests/cli.py)

# the repository's folders of record: a run that did not ask for them must leave them byte for byte
RECORD = [REPO / name for name in ("results", "imgs", "tboard_logs", "models")]
TRIAL_OUTPUTS = ["results.md", "comparisons.md", "results.csv", "accuracy_vs_params.png", "accuracy_vs_epoch_time.png"]


def tree(root: Path) -> set[str]:
    """Every file and folder under ``root``, relative to it."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_a_suite_trial_writes_only_under_its_models_dir(tiny_prepared, tmp_path):
    work = tmp_path / "work"  # the working folder: where a relative default (results/, imgs/, ...) would land
    for name in ("results", "imgs"):
        shutil.copytree(REPO / name, work / name)
    record, copies, before = snapshot(*RECORD), snapshot(work), tree(work)

    result = run_cli("src.suite", "--configs", REPO / "configs", "--models-dir", work / "trial", "--only", "GRUCell",
                     "--seeds", "1", "--data", tiny_prepared, "--set", *TINY, "eval.latency_repeats=1", cwd=work)

    assert result.returncode == 0, result.stderr
    assert snapshot(*RECORD) == record  # the repository's tables, figures, events and runs untouched
    assert snapshot(work / "results", work / "imgs") == copies  # and so are the copies in the working folder
    assert {path for path in tree(work) - before if Path(path).parts[0] != "trial"} == set()  # nothing else new
    trial = work / "trial"
    for name in TRIAL_OUTPUTS:
        assert (trial / name).stat().st_size > 0, name
    assert "Measured on the synthetic twin (preset tiny)" in (trial / "results.md").read_text()
    assert (trial / "GRUCell" / "results.json").is_file()
    assert list((trial / "tboard_logs" / "GRUCell").glob("events.out.tfevents.*"))
    assert f"-> {trial}/results.md" in result.stdout

    # compare on its own, from the same working folder: the trial's tables again, still nothing outside
    result = run_cli("src.compare", "--models-dir", trial, "--configs", REPO / "configs", cwd=work)
    assert result.returncode == 0, result.stderr
    assert snapshot(*RECORD) == record and snapshot(work / "results", work / "imgs") == copies
    assert {path for path in tree(work) - before if Path(path).parts[0] != "trial"} == set()
    assert "comparisons.md" in result.stdout and str(trial) in result.stdout


# (module, arguments, the names the error line must hold); {data} is the tiny twin, {work} the working folder
BAD_ARGUMENTS = [
    ("src.suite", ["--seeds", "0"], ["--seeds", "0", "at least 1"]),
    ("src.suite", ["--seeds", "two"], ["--seeds", "two", "whole number"]),
    ("src.suite", ["--variant-seeds", "-1"], ["--variant-seeds", "-1", "at least 0"]),
    ("src.suite", ["--only", "GRUCel"], ["GRUCel", "no config"]),
    ("src.suite", ["--configs", "{work}/no_configs"], ["--configs", "no_configs", "no such folder"]),
    ("src.suite", ["--configs", "{work}/a_file"], ["--configs", "a_file", "not a folder"]),
    ("src.suite", ["--configs", "{work}/empty"], ["--configs", "empty", "no experiment config"]),
    ("src.suite", ["--models-dir", "{work}/a_file"], ["--models-dir", "a_file", "not a folder"]),
    ("src.suite", ["--out", "{work}/a_file"], ["--out", "a_file", "not a folder"]),
    ("src.suite", ["--tboard-dir", "{work}/a_file"], ["--tboard-dir", "a_file", "not a folder"]),
    ("src.suite", ["--set", "train.epoch=3"], ["train.epoch"]),
    ("src.suite", ["--set", "train.epochs"], ["train.epochs", "KEY=VALUE"]),
    ("src.suite", ["--data", "{work}/no_data"], ["no_data"]),
    ("src.compare", ["--models-dir", "{work}/no_models"], ["--models-dir", "no_models", "no such folder"]),
    ("src.compare", ["--models-dir", "{work}/a_file"], ["--models-dir", "a_file", "not a folder"]),
]


@pytest.mark.parametrize("module, arguments, names", BAD_ARGUMENTS,
                         ids=[f"{module[4:]} {' '.join(arguments)}" for module, arguments, _ in BAD_ARGUMENTS])
def test_a_bad_argument_gets_one_line_before_any_run(tiny_prepared, tmp_path, module, arguments, names):
    work = tmp_path / "work"
    (work / "models" / "GRUCell").mkdir(parents=True)  # compare's default --models-dir, and a run of record
    (work / "models" / "GRUCell" / "results.json").write_text("{}")
    (work / "empty").mkdir()
    (work / "a_file").write_text("not a folder\n")
    defaults = {"src.suite": ["--configs", REPO / "configs", "--only", "GRUCell", "--seeds", "1",
                              "--data", tiny_prepared, "--set", *TINY],
                "src.compare": ["--configs", REPO / "configs"]}[module]
    arguments = [argument.format(work=work) for argument in arguments]
    record, files, before = snapshot(*RECORD), snapshot(work), tree(work)

    result = run_cli(module, *defaults, *arguments, cwd=work)  # the later of two equal flags wins

    assert_one_line_error(result, *names, code=2)
    assert snapshot(work) == files and tree(work) == before  # nothing written, not even a folder
    assert snapshot(*RECORD) == record

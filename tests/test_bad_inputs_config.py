"""Bad config values, run as a user would (issue 17): ``python -m src.train`` and ``python -m src.suite`` refuse
every one in one line that names the file or ``--set`` override, the key and the value, before any data is
generated, read or prepared, and leave every file as it was (src/checks.py's check).

Each case is a fresh process in its own working folder, which holds a finished run's files under the default
``models/`` and ``tboard_logs/``; afterwards that folder must hold exactly what it held (no ``data/``: the
synthetic twin was not started). The processes spend their few seconds importing torch, so the module runs them
two at a time, once (:func:`refused`), and each test reads its case. The same checks, value by value, are
unit-tested in tests/test_config.py."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from src.checks import machine_memory, memory_estimate
from src.config import load_config
from tests.cli import REPO, assert_one_line_error, config_path, run_cli, snapshot, start_cli
from tests.test_config import ALIAS_BOMB, ISSUE_SIZES

pytestmark = pytest.mark.slow  # every case is a python -m src.train or src.suite subprocess (tests/cli.py)

GRU = config_path("GRUCell")
TRAINING_PERSONS = str(list(range(1, 17)))
TINY_DATA, MODELS, MINE = "<tiny twin>", "<models dir>", "<Mine.yaml>"  # filled in by the fixture
# issue 34: config files that YAML would read wrongly or not at all: {placeholder: (file name, its bytes)}
BAD_FILES = {"<Twice.yaml>": ("Twice.yaml", f"base: {GRU}\ntrain:\n  epochs: 1\ntrain:\n  batch_size: 4\n".encode()),
             "<Bomb.yaml>": ("Bomb.yaml", f"base: {GRU}\n{ALIAS_BOMB}".encode()),
             "<Utf16.yaml>": ("Utf16.yaml", f"base: {GRU}\n".encode("utf-16")),
             "<Binary.yaml>": ("Binary.yaml", bytes(range(256)))}

# override -> what the error line names besides the config file and override: the key and the value (and what is
# allowed); each run as python -m src.train --config configs/GRUCell.yaml --data <tiny twin> --set <override>
BAD_OVERRIDES = {
    "train.epochs=0": ("'train.epochs'", "got 0", ">= 1"),
    "data.img_size=0": ("'data.img_size'", "got 0", ">= 1"),
    "model.hidden_dim=0": ("'model.hidden_dim'", "got 0"),
    "train.device=foo": ("'train.device'", "got 'foo'", "(auto, cpu"),
    "model.rnn_type=GRU": ("'model.rnn_type'", "got 'GRU'", "GRUCell"),
    "model.arch=resnet": ("'model.arch'", "got 'resnet'", "r2plus1d"),
    "train.optimizer=rmsprop": ("'train.optimizer'", "got 'rmsprop'", "adamw"),
    "train.scheduler=linear": ("'train.scheduler'", "got 'linear'", "cosine"),
    "train.lr=-0.001": ("'train.lr'", "got -0.001", "> 0"),
    "train.lr=.nan": ("'train.lr'", "got nan"),
    "train.batch_size=0": ("'train.batch_size'", "got 0"),
    "data.max_frames=0": ("'data.max_frames'", "got 0"),
    "train.precise_bn_batches=-1": ("'train.precise_bn_batches'", "got -1"),
    f"data.val_persons={TRAINING_PERSONS}": ("'data.val_persons'", f"got {TRAINING_PERSONS}", "none would be left"),
    "data.val_persons=[]": ("'data.val_persons'", "got []"),
    "data.val_persons=[15, 15]": ("'data.val_persons'", "got [15, 15]", "once"),
    "data.val_persons=[17]": ("'data.val_persons'", "got [17]", "test person"),
    # beyond the issue's list (more values, one by one, in tests/test_config.py)
    "model.pretrained=true": ("'model.pretrained'", "got True", "no pretrained weights"),
    # issue 34 #12: a group the data does not hold, refused from its index.json before a frame is read
    "data.groups=[1, 999]": ("'data.groups': 999 is not a group of", "(its groups: 1, 2, 15, 17)"),
}
# issue 34: sizes that cannot fit, refused before the data is read (each where it exceeds this machine's memory)
FITS_HERE = [override for override in ISSUE_SIZES if memory_estimate(
    load_config(GRU, [override]))["total"] <= machine_memory()]
BAD_OVERRIDES.update({override: (f"'{override.split('=')[0]}' is {int(override.split('=')[1]):,}",
                                 "more than this machine's", "at most about")
                      for override in ISSUE_SIZES if override not in FITS_HERE})

# case -> (module, arguments, what the error line names, exit code)
CASES = {
    **{override: ("src.train", ["--config", GRU, "--data", TINY_DATA, "--set", override],
                  (f"{GRU} --set {override}:", *names), 1) for override, names in BAD_OVERRIDES.items()},
    # data.root auto, as on a fresh clone: a late check would first make the synthetic twin under ./data (tiny
    # here, so that a regression costs seconds, not minutes)
    "auto: train.epochs=0": ("src.train", ["--config", GRU, "--set", "data.synthetic_preset=tiny", "train.epochs=0"],
                             ("'train.epochs'", "got 0"), 1),
    "auto: data.synthetic_preset=huge": ("src.train", ["--config", GRU, "--set", "data.synthetic_preset=huge"],
                                         ("'data.synthetic_preset'", "got 'huge'", "tiny, small, full"), 1),
    "a bad value in a config file": ("src.train", ["--config", MINE, "--data", TINY_DATA],
                                     (f"{MINE}: 'model.dropout'", "got 1.5", "[0, 1)"), 1),
    "auto: data.groups=[3]": ("src.train", ["--config", GRU, "--set", "data.synthetic_preset=tiny", "data.groups=[3]"],
                              ("'data.groups': 3 is not a group of the synthetic twin of preset tiny",), 1),
    "a key given twice": ("src.train", ["--config", "<Twice.yaml>", "--data", TINY_DATA],
                          ("<Twice.yaml>: line 4 is not valid YAML", "key 'train' given twice (lines 2 and 4)"), 1),
    "an alias bomb": ("src.train", ["--config", "<Bomb.yaml>", "--data", TINY_DATA],
                      ("<Bomb.yaml>:", "anchors and aliases (&name, *name) are not read"), 1),
    "a UTF-16 config": ("src.train", ["--config", "<Utf16.yaml>", "--data", TINY_DATA],
                        ("<Utf16.yaml>: not UTF-8 text (byte 0", "save the config as UTF-8"), 1),
    "a binary config": ("src.train", ["--config", "<Binary.yaml>", "--data", TINY_DATA],
                        ("<Binary.yaml>: not UTF-8 text (byte 128",), 1),
    "suite --set train.epochs=0": ("src.suite", ["--configs", REPO / "configs", "--only", "GRUCell",
                                                 "--set", "train.epochs=0", "--models-dir", MODELS],
                                   ("--set train.epochs=0:", "'train.epochs'", "got 0"), 2),
}
# issue 34 #5: a run name is one path component of safe characters, checked with the config
CASES.update({f"--name {name}": ("src.train", ["--config", GRU, "--data", TINY_DATA, "--name", name],
                                 (f"error: --name {name!r}: a run name must be one path component",), 1)
              for name in (".", "/abs/path", "../escaped")})
if not torch.cuda.is_available():
    CASES["train.device=cuda"] = ("src.train", ["--config", GRU, "--data", TINY_DATA, "--set", "train.device=cuda"],
                                  ("'train.device'", "got 'cuda'", "no CUDA"), 1)


def tree(root: Path) -> list[str]:
    """Every path under ``root``, folders too (an empty folder left behind counts)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def make_workdir(path: Path) -> Path:
    """A working folder holding a finished run's files under the default models/ and tboard_logs/."""
    for file in (path / "models" / "GRUCell" / "best.pth", path / "tboard_logs" / "GRUCell" / "events.out"):
        file.parent.mkdir(parents=True)
        file.write_bytes(b"a finished run's file")
    return path


@pytest.fixture(scope="module")
def refused(tiny_prepared, tmp_path_factory) -> dict:
    """Every case run once, two processes at a time: ``{case: (process, workdir, its files and paths before,
    the fills of the placeholders)}``; asserts that the tiny twin and the repository's results/, imgs/ and
    models/ were left as they were."""
    root = tmp_path_factory.mktemp("bad_config")
    mine = root / "configs" / "Mine.yaml"
    mine.parent.mkdir()
    mine.write_text(f"base: {GRU}\nmodel:\n  dropout: 1.5\n")
    fills = {TINY_DATA: str(tiny_prepared), MODELS: str(root / "suite_models"), MINE: str(mine)}
    for placeholder, (name, content) in BAD_FILES.items():
        (root / "configs" / name).write_bytes(content)
        fills[placeholder] = str(root / "configs" / name)
    kept = (tiny_prepared, REPO / "results", REPO / "imgs", REPO / "models")
    kept_before = snapshot(*kept)

    def run(case: str, number: int):
        module, args, _, _ = CASES[case]
        workdir = make_workdir(root / f"case{number}")
        before = snapshot(workdir), tree(workdir)
        process = run_cli(module, *[fills.get(str(arg), arg) for arg in args], cwd=workdir, timeout=180)
        return case, (process, workdir, before, fills)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, CASES, range(len(CASES))))
    assert snapshot(*kept) == kept_before
    return results


@pytest.mark.parametrize("case", CASES)
def test_bad_config_is_refused_in_one_line_before_any_work(refused, case):
    process, workdir, (files, paths), fills = refused[case]
    _, _, names, code = CASES[case]
    assert_one_line_error(process, *[fill(name, fills) for name in names], only_line=True, code=code)
    assert tree(workdir) == paths, "files or folders were created"
    assert snapshot(workdir) == files
    assert not (workdir / "data").exists()  # the synthetic twin was not started


def fill(name: str, fills: dict) -> str:
    """``name`` with the placeholders of the files the fixture wrote (``<Mine.yaml>``, ...) made their paths."""
    for placeholder in (MINE, *BAD_FILES):
        name = name.replace(placeholder, fills[placeholder])
    return name


def test_the_suite_claims_no_run_and_writes_no_table(refused):
    process, _, _, fills = refused["suite --set train.epochs=0"]
    assert not Path(fills[MODELS]).exists()
    assert "[1/" not in process.stdout  # no run started


def test_a_bad_value_in_a_file_names_the_file_not_an_override(refused):
    process, _, _, _ = refused["a bad value in a config file"]
    assert "--set" not in process.stderr


def refusal_peak(args: list, cwd: Path):
    """``(the finished process, its peak resident memory in MB)``: ``python -m src.train args`` alone (ru_maxrss
    of its os.wait4)."""
    process = start_cli("src.train", *args, cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout, process.stderr = process.stdout.read(), process.stderr.read()
    return process, usage.ru_maxrss / 1024  # KiB on Linux


@pytest.fixture(scope="module")
def baseline_peak(tiny_prepared, tmp_path_factory) -> float:
    """The peak memory of refusing train.epochs=0: what importing the command costs."""
    process, peak = refusal_peak(["--config", GRU, "--data", tiny_prepared, "--set", "train.epochs=0"],
                                 tmp_path_factory.mktemp("baseline"))
    assert_one_line_error(process, "'train.epochs'")
    return peak


@pytest.mark.parametrize("override", ISSUE_SIZES)
def test_a_size_that_cannot_fit_is_refused_with_little_memory(tiny_prepared, tmp_path, override, baseline_peak):
    """The refusal of a size too large for this machine costs what any refused config costs (the peak resident
    memory of the process, ru_maxrss: importing torch), not what the size would."""
    if override in FITS_HERE:
        pytest.skip(f"{override} fits this machine's {machine_memory() / 2 ** 30:.0f} GB")
    process, peak = refusal_peak(["--config", GRU, "--data", tiny_prepared, "--set", override], tmp_path)
    assert_one_line_error(process, f"--set {override}: '{override.split('=')[0]}'", code=1)
    assert peak < baseline_peak + 100, f"{peak:.0f} MB resident at the refusal, {baseline_peak:.0f} MB for epochs=0"
    assert not list(tmp_path.iterdir())  # nothing written

"""Shared fixtures: the real KTH samples (skipped when absent) and the tiny synthetic twin, made once per
session and shared: raw, prepared, and prepared in the other layouts. Tests that change a prepared dataset
copy it (``shutil.copytree``) and change the copy."""
import os
from pathlib import Path

# OpenMP's idle threads sleep instead of spinning: on 2 cores shared with the test's other threads (batch
# prefetching, TensorBoard, other processes) spinning threads made small models' tests up to 20x slower
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from src.data.prepare import prepare  # noqa: E402
from src.data.synthetic import generate  # noqa: E402
from tests.test_sources import make_folder, make_hmdb51, make_ucf101  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KTH_SAMPLES = Path(os.environ.get("KTH_SAMPLES", REPO.parent / "shared" / "kth_samples"))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of many tiny streaming steps (~0.5 ms each on one thread; two threads on a
    busy 2-core machine make them up to 100x slower). Use: ``pytestmark = pytest.mark.usefixtures(...)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def kth_samples() -> Path:
    """The folder of real KTH videos and 00sequences.txt (see its README)."""
    if not (KTH_SAMPLES / "00sequences.txt").is_file():
        pytest.skip(f"real KTH samples not found at {KTH_SAMPLES} (set KTH_SAMPLES to the folder)")
    return KTH_SAMPLES


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    """The tiny synthetic twin, raw: KTH-named AVIs and 00sequences.txt."""
    out = tmp_path_factory.mktemp("synth_raw_tiny")
    generate(out, preset="tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_prepared(tiny_raw, tmp_path_factory) -> Path:
    """The tiny synthetic twin, prepared: index.json and the cache (no PNG tree: every reader takes the cache,
    and the PNGs would double the time and the size)."""
    out = tmp_path_factory.mktemp("synth_tiny")
    prepare(tiny_raw, out, workers=1, write_png=False)
    return out


class PreparedLayouts(dict):
    """``{name: prepared folder}`` of tests/test_sources.py's builders on the tiny twin's videos, each prepared
    (cache only) the first time it is asked for: 'folder', 'folder+groups', 'ucf101', 'hmdb51'."""
    BUILDERS = {"folder": lambda raw, root: make_folder(raw, root),
                "folder+groups": lambda raw, root: make_folder(raw, root, groups=True),
                "ucf101": make_ucf101, "hmdb51": make_hmdb51}

    def __init__(self, tiny_raw: Path, tmp_path_factory):
        super().__init__()
        self.tiny_raw, self.tmp_path_factory = tiny_raw, tmp_path_factory

    def __missing__(self, name: str) -> Path:
        root = self.tmp_path_factory.mktemp("layout")
        prepare(self.BUILDERS[name](self.tiny_raw, root), root / "prepared", workers=2, write_png=False)
        self[name] = root / "prepared"
        return self[name]


@pytest.fixture(scope="session")
def layouts(tiny_raw, tmp_path_factory) -> PreparedLayouts:
    """The tiny twin's videos in the other layouts, prepared once per session when first used (read-only)."""
    return PreparedLayouts(tiny_raw, tmp_path_factory)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty temporary TORCH_HOME; returns the folder torchvision caches weights in.
    Downloads of pretrained weights go to a closed local port, so they fail at once, offline or not."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PRETRAINED_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # restored after the test
    torch.hub.set_dir(str(tmp_path / "hub"))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


@pytest.fixture(scope="session")
def tiny_unmarked(tiny_prepared, tmp_path_factory) -> Path:
    """The tiny twin's frames prepared as if they were real KTH: index.json without the
    synthetic marker (the cache is a link to the tiny twin's)."""
    import json
    out = tmp_path_factory.mktemp("kth_unmarked")
    index = json.loads((tiny_prepared / "index.json").read_text())
    index["synthetic"] = False
    index.pop("synthetic_preset", None)
    (out / "index.json").write_text(json.dumps(index))
    (out / "cache").symlink_to(tiny_prepared / "cache")
    return out


FOUR_CLASSES = ["stroll", "trot", "sprint", "punch"]
"""The classes of :func:`four_class_prepared`: KTH's walking, jogging, running and boxing (labels 0-3) under
other names, so that a class name taken from KTH instead of from the data or the checkpoint shows."""
FOUR_CLASS_TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
                   "data.train_clips_per_video=1", "data.eval_clips_per_video=2", "train.batch_size=8",
                   "train.epochs=2", "eval.latency_repeats=2"]


@pytest.fixture(scope="session")
def four_class_prepared(tiny_prepared, tmp_path_factory) -> Path:
    """The tiny twin's videos of four of its six actions as a prepared dataset of its own, a folder of
    :data:`FOUR_CLASSES`: index.json (version 2 of issue 18's design) lists them as its ``classes``, each video
    keeps its label (0-3) and KTH's keys; the cache is a link to the tiny twin's."""
    import json

    from src.data.sources.kth import ACTIONS
    out = tmp_path_factory.mktemp("four_classes")
    index = json.loads((tiny_prepared / "index.json").read_text())
    kept = ACTIONS[:len(FOUR_CLASSES)]
    videos = [{**video, "class": FOUR_CLASSES[video["label"]], "group": str(video["person"]),
               "file": f"{FOUR_CLASSES[video['label']]}/{video['video_id']}.avi"}
              for video in index["videos"] if video["action"] in kept]
    assert {video["label"] for video in videos} == set(range(len(FOUR_CLASSES)))
    index.update(version=2, source="folder", channels=1, classes=FOUR_CLASSES, group_kind="groups.csv", folds=[],
                 videos=videos, failed=[])
    (out / "index.json").write_text(json.dumps(index))
    (out / "cache").symlink_to(tiny_prepared / "cache")
    return out


@pytest.fixture(scope="session")
def four_class_run(four_class_prepared, tmp_path_factory) -> Path:
    """``models/GRUCell/best.pth`` of a 2-epoch GRUCell run on :func:`four_class_prepared`, evaluated
    (``results.json`` beside it); its TensorBoard events under ``tboard/GRUCell``."""
    from src.config import load_config
    from src.training.evaluation import evaluate
    from src.training.trainer import train

    out = tmp_path_factory.mktemp("four_class_run")
    config = load_config("configs/GRUCell.yaml", [*FOUR_CLASS_TINY, f"log.models_dir={out / 'models'}",
                                                  f"log.tboard_dir={out / 'tboard'}"])
    train(config, data_root=four_class_prepared)
    evaluate(out / "models" / "GRUCell" / "best.pth", device="cpu")
    return out

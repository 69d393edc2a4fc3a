"""What made a result, and whether a saved result or checkpoint may stand for a run about to be made.

Every checkpoint and ``results.json`` carries ``provenance``::

    {"data": {"root": "data/synth", "synthetic": true, "preset": "full", "source": "kth", "channels": 1,
              "fingerprint": "sha1:..."},
     "classes": ["walking", ...],
     "split": {"protocol": "course", "fold": null,
               "groups": {"train": [1, ..., 14], "val": [15, 16], "test": [17, ..., 25]}},   # as loaded
     "persons": {"train": [1, ..., 14], "val": [15, 16], "test": [17, ..., 25]},   # KTH only, for older readers
     "code_version": "<git commit>" or "unknown",
     "amp": false,                                                                 # mixed precision used
     "precision": "float32"}                               # float32 | bfloat16 | float16 (train.amp, the device)

(the test groups are added by src.evaluate). The fingerprint is a SHA-1 over the prepared dataset's
description (``index.json``'s classes, channels and videos: ids, groups, labels, subsequences, splits),
its synthetic flag and the bytes of every cache file (the frames), so it changes when any frame changes
and not when the folder moves. A grayscale KTH dataset is described as before index.json had classes
(its videos' ids, persons, actions, labels, scenarios, frame counts and subsequences), so its
fingerprint is the one it had then. On the full synthetic twin (599 videos, 668 MB of cache) it takes
about 0.6 s from the page cache; it is computed once per process per dataset state.
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path

from src.config import schema_root
from src.data.index import V1_ENTRY_KEYS, read_index
from src.data.splits import group_order
from src.training.runlock import LOCK_NAME

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE_KEYS = ("arch", "encoder", "rnn_type", "emb_dim", "hidden_dim", "num_layers")
"""model keys that change the parameters' shapes: a checkpoint cannot continue under others."""


@functools.lru_cache(maxsize=8)
def _fingerprint(root: str, cache_state: tuple, index_state: tuple) -> str:
    index = read_index(root)
    described = {"size": index["size"], "synthetic": bool(index.get("synthetic"))}
    if index["source"] == "kth" and index["channels"] == 1:  # as before index.json had classes: the same fingerprint
        described["videos"] = [{key: video[key] for key in V1_ENTRY_KEYS} for video in index["videos"]]
    else:
        described.update({key: index[key] for key in ("source", "channels", "classes", "group_kind", "folds")},
                         videos=index["videos"])
    digest = hashlib.sha1(json.dumps(described, sort_keys=True).encode())
    for name, _, _ in cache_state:
        with open(Path(root) / "cache" / name, "rb") as f:
            digest.update(name.encode())
            digest.update(hashlib.file_digest(f, "sha1").digest())
    return f"sha1:{digest.hexdigest()}"


def data_fingerprint(root: str | Path) -> str:
    """``'sha1:<hex>'`` of a prepared dataset's video list and cache files (its frames)."""
    root = Path(root)
    cache = sorted((root / "cache").rglob("*.npy")) if (root / "cache").is_dir() else []
    state = tuple(((p.relative_to(root / "cache").as_posix()), p.stat().st_size, p.stat().st_mtime_ns) for p in cache)
    index = root / "index.json"
    return _fingerprint(str(root.resolve()), state, (index.stat().st_size, index.stat().st_mtime_ns))


def describe_data(root: str | Path, preset: str | None = None) -> dict:
    """``{'root', 'synthetic', 'preset', 'source', 'channels', 'fingerprint'}`` of a prepared dataset.
    ``preset``: the synthetic twin's preset when index.json does not name it (it does from src.data.prepare
    on)."""
    root = Path(root)
    index = read_index(root)  # raises naming index.json when it is missing or broken
    synthetic = bool(index.get("synthetic", False))
    return {"root": str(root), "synthetic": synthetic,
            "preset": (index.get("synthetic_preset") or preset) if synthetic else None,
            "source": index["source"], "channels": index["channels"], "fingerprint": data_fingerprint(root)}


SOURCE_LABELS = {"kth": "real KTH", "folder": "a video folder", "ucf101": "UCF101-layout data",
                 "hmdb51": "HMDB51-layout data"}
"""How results name data that is not synthetic, by its source (data recorded before sources: KTH)."""


def data_label(data: dict | None) -> str:
    """``'real KTH'``, ``'a video folder'``, ``'UCF101-layout data'``, ``'the synthetic twin (preset full)'`` or
    ``'unknown data'``."""
    if not data:
        return "unknown data"
    if not data.get("synthetic"):
        return SOURCE_LABELS.get(data.get("source", "kth"), f"{data.get('source')} data")
    return f"the synthetic twin (preset {data['preset']})" if data.get("preset") else "the synthetic twin"


def where(data: dict | None) -> str:
    """``'data/synth (synthetic)'``, ``'data/kth (real KTH)'`` or ``'data/mine (a video folder)'``: for
    one-line messages."""
    if not data:
        return "unknown data"
    return f"{data['root']} ({'synthetic' if data.get('synthetic') else data_label(data)})"


RUN_FILES = ("best.pth", "last.pth", "results.json", LOCK_NAME)
"""What src.train and src.evaluate write into a run's folder, ``<models dir>/<run>/``."""


def in_another_runs_folder(path: str | Path, run: str, what: str) -> str | None:
    """Why ``path``, a file of run ``run`` (``what`` it is: ``'results'``, ``'checkpoint'``), lies in the folder of
    another run, or None. The one rule of where a run's files go: ``<models dir>/<run>/``, the folder named after the
    run (``--name``'s, ``GRUCell_seed1``'s), for src.analysis reads ``<folder>/results.json`` as the results of run
    ``<folder>``. src.analysis refuses a results.json that breaks it, src.evaluate a checkpoint whose results.json
    would (:func:`src.training.evaluation.check_results_folder`). Returns ``"<path>: the <what> of run '<run>', in the
    folder of run '<folder>'"``; the caller says what to do."""
    folder = Path(path).parent.name
    if run == folder:
        return None
    return f"{path}: the {what} of run '{run}', in the folder of run '{folder}'"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of this code (``+dirty`` when src/ or configs/ have uncommitted
    changes), or ``'unknown'`` outside a git checkout."""
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "configs")
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def groups_of(dataset) -> list:
    """The groups (KTH: persons) whose videos a VideoClipDataset actually loaded, sorted."""
    return sorted(set(dataset.groups), key=group_order)


def split_record(datasets: dict, trained: dict | None = None) -> dict:
    """What provenance records of the split of ``datasets`` (``{'train': train_set, 'val': val_set}``, or
    ``{'test': test_set}`` with ``trained``, the provenance of training, whose groups it adds to):
    ``{'split': {'protocol', 'fold', 'groups': {part: groups as loaded}}}``, plus ``'persons'`` (the same
    lists) on KTH, for older readers."""
    trained = trained or {"split": {"groups": {}}}
    first = next(iter(datasets.values()))
    groups = {part: groups_of(dataset) for part, dataset in datasets.items()}
    record = {"split": {"protocol": first.split_info.protocol, "fold": first.split_info.fold,
                        "groups": {**trained["split"]["groups"], **groups}}}
    if all("person" in video for video in first.videos):
        record["persons"] = {**trained.get("persons", {}), **groups}
    return record


SPEED_ONLY = ("data.prefetch", "data.num_workers")
"""Config keys that change how fast the same batches are made, never which (tests/test_batches.py): a result stands
whatever they are."""


def comparable_config(config: dict) -> dict:
    """The config minus what does not change a result: where files go (``log``), the run's
    name and ``data.root`` (the data itself is compared by fingerprint), :data:`SPEED_ONLY`, and ``train.amp``
    (compared as the precision it gives, by :func:`results_mismatch`: ``true`` before ``auto`` meant float16 on
    CUDA only).
    A key that the config lacks (saved by code older than the key) takes configs/base.yaml's default, which
    keeps the older behaviour (``data.split: auto`` is the course's split on KTH, ``data.channels: 1`` gray)."""
    schema = schema_root()
    sections = {section: values for section, values in config.items() if isinstance(values, dict)}
    kept = {section: {**schema.get(section, {}), **sections.get(section, {})}
            for section in {*schema, *sections} if section != "log"}
    for section, key in (("data", "root"), ("train", "amp"), *(name.split(".") for name in SPEED_ONLY)):
        kept.get(section, {}).pop(key, None)
    return kept


def config_differences(saved: dict, wanted: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """``['train.epochs: 30 -> 1', ...]``: the keys where two configs differ, as :func:`comparable_config` sees
    them (log, data.root, :data:`SPEED_ONLY` and train.amp aside), and but for the keys ``ignore``
    (``('train.select',)``)."""
    saved, wanted = comparable_config(saved), comparable_config(wanted)
    changes = []
    for section in sorted(set(saved) | set(wanted)):
        old, new = saved.get(section, {}), wanted.get(section, {})
        for key in sorted(set(old) | set(new)):
            if f"{section}.{key}" not in ignore and old.get(key, "<unset>") != new.get(key, "<unset>"):
                changes.append(f"{section}.{key}: {old.get(key, '<unset>')} -> {new.get(key, '<unset>')}")
    return changes


def _same_data(saved: dict | None, data: dict) -> bool:
    return bool(saved) and saved.get("fingerprint") == data["fingerprint"]


def _data_change(what: str, saved: dict | None, data: dict, made: str = "made") -> str:
    if saved and saved.get("root") == data["root"]:
        return f"{what} was {made} on other frames in {where(saved)} (the dataset changed since)"
    return f"{what} was {made} on {where(saved)}, now {where(data)}"


def results_mismatch(results: dict, config: dict, data: dict) -> str | None:
    """Why a saved ``results.json`` cannot stand for the run ``config`` on ``data``
    (from :func:`describe_data`), or None when it can. ``train.amp: auto`` leaves the precision to the machine, as
    ``train.device: auto`` leaves the device: under it a result stands in whichever precision it was made (its
    results.json says which), so that a clone on a CPU with native bf16 or on a GPU reuses the float32 results of
    record instead of training them again; an explicit ``train.amp`` (true, false) must be the precision the run
    would train in here."""
    provenance = results.get("provenance")
    if not provenance:
        return "results.json has no provenance (made by older code)"
    for key in ("train_data", "data"):
        if not _same_data(provenance.get(key), data):
            return _data_change("results.json", provenance.get(key), data)
    changes = config_differences(results.get("config", {}), config)
    if changes:
        more = "; ..." if len(changes) > 3 else ""
        return f"results.json was made with another config ({'; '.join(changes[:3])}{more})"
    if config["train"]["amp"] == "auto":
        return None
    # torch: src.compare and experiments.recipe.study read provenance without it; reached only under an explicit
    # train.amp
    from src.training.device import select_device, training_precision

    made = provenance["train_precision"]
    wanted = training_precision(config["train"]["amp"], select_device(config["train"]["device"]))
    if made != wanted:
        return f"results.json was made in {made}, the run would train in {wanted} (train.amp {config['train']['amp']})"
    return None


def resume_refusal(checkpoint: dict, config: dict, data: dict, path: str | Path) -> str | None:
    """Why ``checkpoint`` (last.pth at ``path``) must not be continued as the run ``config``
    on ``data``, or None when it may (other config changes only warn): other data, or
    :func:`config_resume_refusal`."""
    saved = checkpoint["provenance"]["data"]
    if not _same_data(saved, data):
        return _data_change(str(path), saved, data, made="trained")
    return config_resume_refusal(checkpoint, config, path)


TRAINING_STATE_KEYS = ("optimizer", "scheduler")
"""train keys whose state a checkpoint saves in its own form (Adam's moments, SGD's momentum, a schedule's
counters): another value cannot load it."""


def config_resume_refusal(checkpoint: dict, config: dict, path: str | Path) -> str | None:
    """Why ``checkpoint`` (last.pth at ``path``) must not be continued under ``config``, from the configs alone
    (before any data is read): another model architecture (:data:`ARCHITECTURE_KEYS`), another optimizer or
    learning-rate schedule (:data:`TRAINING_STATE_KEYS`: their saved states are another's); else None."""
    old, new = checkpoint["config"]["model"], config["model"]
    changed = [f"model.{key}: {old.get(key)} -> {new.get(key)}" for key in ARCHITECTURE_KEYS
               if old.get(key) != new.get(key)]
    if changed:
        return f"{path} has another model architecture ({', '.join(changed)})"
    old, new = checkpoint["config"]["train"], config["train"]
    keys = [key for key in TRAINING_STATE_KEYS if old.get(key) != new.get(key)]
    if keys:
        changed = ", ".join(f"train.{key}: {old.get(key)} -> {new.get(key)}" for key in keys)
        saved = " and ".join(f"train.{key}={old.get(key)}" for key in keys)
        return f"{path} saved the state of another optimizer or schedule ({changed}); set {saved} to continue it"
    return None

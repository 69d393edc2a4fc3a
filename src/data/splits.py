"""Split protocols: which videos train, validate and test, always by group (the person, subject or film
that a split keeps together; ``index.json``'s per-video ``group``).

``data.split`` (configs/base.yaml) names the protocol:

- ``course`` (KTH only): validation persons ``data.val_persons`` (15, 16), training persons 1-16 minus
  those, test persons 17-25 (the course's split);
- ``schuldt2004`` (KTH only): KTH's official split (Schuldt, Laptev, Caputo, ICPR 2004; the header of
  ``00sequences.txt``): training persons 11-18, validation 19, 20, 21, 23, 24, 25, 1, 4, test 22, 2, 3, 5-10;
- ``given``: the dataset's own fold ``data.fold`` (UCF101/HMDB51's split files: the videos' ``split``);
  validation carved from the training groups;
- ``kfold``: the groups, sorted, permuted by ``data.split_seed`` and dealt into ``data.folds`` folds
  (numpy's ``array_split``); fold ``data.fold`` (1-based) is the test split, validation is carved from
  the other groups. Over the folds every video is tested exactly once;
- ``random``: the groups permuted by ``data.split_seed``; ``data.test_fraction`` of them test, then
  validation carved from the rest;
- ``auto`` (the default): course on KTH, given where the dataset ships folds, else random.

Carving validation: ``max(1, round(data.val_fraction * n))`` of the ``n`` training groups, chosen by
``data.split_seed``, leaving at least one to train on. ``data.groups`` (null: all) restricts every
protocol to those groups (e.g. KTH persons 1-16 for a cross-validation that never reads the test persons).

:func:`split_videos` refuses (:class:`SplitError`, one line naming ``data.split`` and the class or group)
what cannot train or cannot be measured: a class without a training video, an empty validation or test
split, a group in two splits (but ``given``'s test side, which is the dataset's own: HMDB51's split
files are made class by class, so one film may train in one class and test in another), course or
schuldt2004 on data that is not KTH, given on data without that fold, kfold with a fold outside 1..folds.

    split = split_videos(read_index("data/kth"), config["data"])
    split.protocol, split.groups["test"]      # 'course', [17, 18, ..., 25]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.config import schema_root
from src.data.sources.kth import TEST_PERSONS, TRAIN_PERSONS

PROTOCOLS = ("auto", "course", "schuldt2004", "given", "kfold", "random")
PARTS = ("train", "val", "test")
KTH_PROTOCOLS = ("course", "schuldt2004")
SCHULDT2004_PERSONS = {"train": (11, 12, 13, 14, 15, 16, 17, 18), "val": (19, 20, 21, 23, 24, 25, 1, 4),
                       "test": (22, 2, 3, 5, 6, 7, 8, 9, 10)}
"""KTH's official split (Schuldt, Laptev, Caputo, ICPR 2004), in the order of 00sequences.txt's header."""


class SplitError(ValueError):
    """A split that cannot train or cannot be measured; one line naming data.split (and the class or group)."""


@dataclass
class Split:
    """Which groups and videos each part of a split holds."""
    protocol: str                     # resolved (never 'auto')
    fold: int | None                  # given, kfold
    groups: dict[str, list]           # {'train': [...], 'val': [...], 'test': [...]}: the groups of its videos, sorted
    video_ids: dict[str, list[str]]   # {'train': [...], 'val': [...], 'test': [...]}, sorted


def group_order(group) -> tuple:
    """A sort key for groups (ints, names, or both)."""
    return isinstance(group, str), group


def val_persons_refusal(persons: list[int]) -> str | None:
    """``'must ..., got ...'`` when ``persons`` cannot be the course's validation persons: empty, not training
    persons (1-16), repeated, or all of them (none left to train on); else None."""
    allowed = f"training persons {TRAIN_PERSONS[0]}-{TRAIN_PERSONS[-1]}"
    persons = list(persons)
    if not persons:
        return f"must list at least one of the {allowed}, got []"
    outside = [p for p in persons if p not in TRAIN_PERSONS]
    if outside:
        what = "a test person" if outside[0] in TEST_PERSONS else "not a KTH person"
        return f"must list {allowed} only, got {persons} ({outside[0]} is {what})"
    twice = sorted({p for p in persons if persons.count(p) > 1})
    if twice:
        return f"must list each person once, got {persons} ({twice[0]} more than once)"
    if set(persons) == set(TRAIN_PERSONS):
        return (f"must leave at least one of the {allowed} to train on, got {persons}: every one of them, so none "
                f"would be left to train on")
    return None


def kth_persons(protocol: str, val_persons=(15, 16)) -> dict[str, tuple[int, ...]]:
    """The persons of each part of a KTH protocol: ``kth_persons('course')['val'] -> (15, 16)``.
    SplitError when the course's ``val_persons`` cannot be (:func:`val_persons_refusal`)."""
    if protocol == "schuldt2004":
        return dict(SCHULDT2004_PERSONS)
    if refusal := val_persons_refusal(val_persons):
        raise SplitError(f"data.val_persons {refusal} (data.split course)")
    val = tuple(sorted(val_persons))
    return {"train": tuple(p for p in TRAIN_PERSONS if p not in val), "val": val, "test": TEST_PERSONS}


def resolve_protocol(index: dict, protocol: str) -> str:
    """``auto`` made concrete: course on KTH, given where the index has folds, else random."""
    if protocol != "auto":
        return protocol
    return "course" if index.get("source") == "kth" else "given" if index.get("folds") else "random"


def protocol_refusal(data: dict) -> tuple[str, str] | None:
    """``(key, what is allowed)`` when the split keys of a config's ``data`` section cannot work on any
    data, else None: for :func:`split_refusal`, before any data is read, and :func:`split_videos`."""
    if data["split"] == "kfold" and not 1 <= data["fold"] <= data["folds"]:
        return "data.fold", f"1 to data.folds ({data['folds']}) with data.split kfold"
    return None


def split_refusal(data: dict) -> tuple[str, str] | None:
    """``(key, 'must ..., got ...')`` when the split keys of a config's ``data`` section (``data.split`` one of
    :data:`PROTOCOLS`) cannot work on any data: the validation persons (:func:`val_persons_refusal`), a kfold
    fold outside its folds (:func:`protocol_refusal`); else None. For :func:`src.checks.check`."""
    if refusal := val_persons_refusal(data["val_persons"]):
        return "data.val_persons", refusal
    if refusal := protocol_refusal(data):
        key, allowed = refusal
        return key, f"must be {allowed}, got {data[key.split('.')[1]]!r}"
    return None


def unknown_groups_refusal(wanted: list, present: list, data: str = "this data") -> str | None:
    """``'999 is not a group of this data (its groups: 1, 2, 15, 17); ...'`` when ``wanted`` (``data.groups``) names a
    group not among ``present`` (the groups of ``data``, sorted), compared as text (``3`` is ``'3'``); else None. For
    :func:`split_videos` and, before any data is read, :func:`src.checks.data_groups_refusal`."""
    unknown = sorted({str(g) for g in wanted} - {str(g) for g in present})
    if not unknown:
        return None
    return (f"{unknown[0]} is not a group of {data} (its groups: {', '.join(map(str, present[:12]))}"
            f"{' ...' if len(present) > 12 else ''}); list groups it holds, or null for all")


def _share(count: int, fraction: float) -> int:
    """``max(1, round(fraction * count))``, leaving at least one of ``count`` (0 when ``count`` < 2)."""
    return max(0, min(max(1, round(fraction * count)), count - 1))


def _carve(groups: list, fraction: float, seed: int) -> list:
    """The validation groups carved from the training ``groups``: :func:`_share` of them, by ``seed``."""
    groups = sorted(groups, key=group_order)
    chosen = np.random.default_rng(seed).permutation(len(groups))[:_share(len(groups), fraction)]
    return [groups[i] for i in sorted(chosen)]


def split_videos(index: dict, data: dict, strict: bool = True) -> Split:
    """Split the videos of ``index`` (:func:`src.data.index.read_index`) as the config's ``data``
    section says (missing keys: configs/base.yaml's defaults); see the module docstring.

    ``strict=False`` skips the refusals of splits that cannot train or be measured (a class without a
    training video, an empty validation or test part), for a dataset that loads one part of a few
    videos (the course's call on a partial KTH); the protocol's own refusals stay. Every protocol but
    ``given`` puts each group in one part by construction (a KTH protocol that names a person twice is
    refused); ``given`` keeps the dataset's sides (see the module docstring).
    Raises SplitError, one line naming data.split (or the key at fault) and the class or group."""
    data = {**schema_root()["data"], **data}
    protocol = resolve_protocol(index, data["split"])
    source = index.get("source", "kth")
    if protocol not in PROTOCOLS[1:]:
        raise SplitError(f"data.split: {protocol!r} is not a protocol; use one of {', '.join(PROTOCOLS)}")
    if protocol in KTH_PROTOCOLS and source != "kth":
        raise SplitError(f"data.split: {protocol} splits KTH's persons, and this data is {source} (its groups: "
                         f"{index.get('group_kind', 'groups')}); use given, kfold or random")
    fold = int(data["fold"]) if protocol in ("given", "kfold") else None
    if protocol == "given" and str(fold) not in index.get("folds", []):
        ships = f"ships the folds {', '.join(index['folds'])}" if index.get("folds") else "ships no split folds"
        raise SplitError(f"data.split: given fold {fold} (data.fold), but this {source} data {ships}; "
                         f"{'choose one of those' if index.get('folds') else 'use kfold or random'}")
    if protocol == "kfold" and (refusal := protocol_refusal({**data, "split": protocol})):
        key, allowed = refusal
        raise SplitError(f"data.split: kfold: {key} must be {allowed}, got {data[key.split('.')[1]]!r}")

    videos = index["videos"]
    present = sorted({v["group"] for v in videos}, key=group_order)
    if data["groups"] is not None:
        wanted = {str(g) for g in data["groups"]}
        if refusal := unknown_groups_refusal(data["groups"], present):
            raise SplitError(f"data.groups: {refusal}")
        videos = [v for v in videos if str(v["group"]) in wanted]
        present = [g for g in present if str(g) in wanted]
    seed = int(data["split_seed"])

    part_of: dict = {}  # group -> part (all but given's videos)
    if protocol in KTH_PROTOCOLS:
        for part, persons in kth_persons(protocol, data["val_persons"]).items():
            for person in persons:
                if person in part_of:
                    raise SplitError(f"data.split: {protocol} puts person {person} in both the {part_of[person]} and "
                                     f"the {part} split; a person belongs to one split")
                part_of[person] = part
    elif protocol == "kfold":
        order = np.random.default_rng(seed).permutation(len(present))
        folds = np.array_split(np.array([present[i] for i in order], dtype=object), int(data["folds"]))
        test = list(folds[fold - 1])
        rest = [g for g in present if g not in test]
        val = _carve(rest, data["val_fraction"], seed)
        part_of = {g: "test" if g in test else "val" if g in val else "train" for g in present}
    elif protocol == "random":
        order = np.random.default_rng(seed).permutation(len(present))
        test = [present[i] for i in order[:_share(len(present), data["test_fraction"])]]
        rest = [g for g in present if g not in test]
        val = _carve(rest, data["val_fraction"], seed)
        part_of = {g: "test" if g in test else "val" if g in val else "train" for g in present}

    if protocol == "given":
        side = {v["video_id"]: v.get("split", {}).get(str(fold)) for v in videos}
        val = _carve(sorted({v["group"] for v in videos if side[v["video_id"]] == "train"}, key=group_order),
                     data["val_fraction"], seed)
        parts = {v["video_id"]: "val" if side[v["video_id"]] == "train" and v["group"] in val else side[v["video_id"]]
                 for v in videos}
    else:
        parts = {v["video_id"]: part_of.get(v["group"]) for v in videos}
    video_ids = {part: sorted(vid for vid, p in parts.items() if p == part) for part in PARTS}
    by_id = {v["video_id"]: v for v in videos}
    groups = {part: sorted({by_id[vid]["group"] for vid in ids}, key=group_order) for part, ids in video_ids.items()}
    split = Split(protocol=protocol, fold=fold, groups=groups, video_ids=video_ids)
    if strict:
        _refuse(split, index, data, by_id)
    return split


def _refuse(split: Split, index: dict, data: dict, by_id: dict) -> None:
    """Raise SplitError for a split that cannot train or cannot be measured (see :func:`split_videos`)."""
    name = f"data.split: {split.protocol}" + (f" fold {split.fold}" if split.fold is not None else "")
    word = "person" if index.get("source", "kth") == "kth" else "group"
    restricted = " among data.groups" if data["groups"] is not None else ""
    for part in ("val", "test"):
        if not split.video_ids[part]:
            held = sorted({video["group"] for video in by_id.values()}, key=group_order)
            defined = (f" {list(kth_persons(split.protocol, data['val_persons'])[part])}"
                       if split.protocol in KTH_PROTOCOLS else "")
            how = ("choose data.val_persons among them" if split.protocol == "course" and part == "val" else
                   f"use at most {len(held)} data.folds" if split.protocol == "kfold" and part == "test" else
                   f"use data with more {word}s, or another data.split")
            shown = ", ".join(map(str, held[:12])) + (" ..." if len(held) > 12 else "")
            raise SplitError(f"{name} leaves the {part} split empty (no video of its {word}s{defined}{restricted}; "
                             f"the data holds {word}s {shown}); {how}")
    trained = {by_id[vid]["label"] for vid in split.video_ids["train"]}
    for label, class_name in enumerate(index["classes"]):
        if label not in trained:
            raise SplitError(f"{name} leaves class {class_name!r} without a training video (training {word}s: "
                             f"{', '.join(map(str, split.groups['train'])) or 'none'}{restricted}); add videos of "
                             f"{class_name!r} to other {word}s, or choose another data.split")

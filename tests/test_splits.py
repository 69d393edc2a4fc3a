"""src/data/splits.py: every protocol on fabricated indexes (KTH's 25 persons, a folder's groups, a dataset
with folds), and every refusal in one line."""
from __future__ import annotations

import pytest

import src.data.splits as splits
from src.data.sources.kth import ACTIONS, video_id
from src.data.splits import PROTOCOLS, Split, SplitError, split_videos


def kth_index(persons=range(1, 26), actions=ACTIONS) -> dict:
    """A KTH index (version 2): every action of every person, scenario 1."""
    videos = [{"video_id": video_id(p, a, 1), "label": ACTIONS.index(a), "class": a, "group": p, "person": p,
               "action": a, "scenario": 1, "num_frames": 50, "sequences": [[0, 50]]}
              for p in persons for a in actions]
    return {"source": "kth", "classes": list(ACTIONS), "folds": [], "group_kind": "person", "videos": videos}


def group_index(groups=("a", "b", "c", "d", "e", "f"), classes=("clap", "wave"), folds=None) -> dict:
    """A folder's index: one video of every class per group; ``folds``: ``{fold: {group: side}}``."""
    videos = []
    for group in groups:
        for label, name in enumerate(classes):
            video = {"video_id": f"{name}/{group}", "label": label, "class": name, "group": group,
                     "num_frames": 30, "sequences": [[0, 30]]}
            if folds:
                video["split"] = {fold: sides[group] for fold, sides in folds.items() if sides.get(group)}
            videos.append(video)
    return {"source": "folder" if not folds else "ucf101", "classes": list(classes), "folds": sorted(folds or []),
            "group_kind": "groups.csv", "videos": videos}


def parts_of(split: Split) -> dict[str, set]:
    return {part: set(groups) for part, groups in split.groups.items()}


def assert_disjoint(split: Split) -> None:
    train, val, test = (set(split.groups[p]) for p in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test, split.groups
    ids = [vid for part in ("train", "val", "test") for vid in split.video_ids[part]]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------- KTH's protocols

def test_course_is_the_default_on_kth_with_its_persons():
    split = split_videos(kth_index(), {})
    assert (split.protocol, split.fold) == ("course", None)
    assert split.groups == {"train": list(range(1, 15)), "val": [15, 16], "test": list(range(17, 26))}
    assert split.video_ids["val"] == sorted(video_id(p, a, 1) for p in (15, 16) for a in ACTIONS)
    other = split_videos(kth_index(), {"split": "course", "val_persons": [9, 3]})
    assert other.groups["val"] == [3, 9] and 3 not in other.groups["train"] and 15 in other.groups["train"]


def test_schuldt2004_takes_ktHs_official_persons():
    split = split_videos(kth_index(), {"split": "schuldt2004"})
    assert split.groups == {"train": list(range(11, 19)), "val": [1, 4, 19, 20, 21, 23, 24, 25],
                            "test": [2, 3, 5, 6, 7, 8, 9, 10, 22]}
    assert_disjoint(split)


@pytest.mark.parametrize("protocol", ["course", "schuldt2004"])
def test_kth_protocols_are_refused_on_other_data(protocol):
    with pytest.raises(SplitError, match=rf"^data.split: {protocol} splits KTH's persons, and this data is folder "
                                         r"\(its groups: groups.csv\); use given, kfold or random$"):
        split_videos(group_index(), {"split": protocol})


# ---------------------------------------------------------------- given

FOLDS = {"1": {"a": "train", "b": "train", "c": "train", "d": "train", "e": "test", "f": None},
         "2": {"a": "test", "b": "train", "c": "train", "d": "train", "e": "train", "f": "train"}}


def test_given_takes_the_datasets_fold_and_carves_validation_from_its_training_groups():
    index = group_index(folds=FOLDS)
    split = split_videos(index, {})  # auto: the data ships folds
    assert (split.protocol, split.fold) == ("given", 1)
    assert split.groups["test"] == ["e"] and "f" not in {g for groups in split.groups.values() for g in groups}
    assert len(split.groups["val"]) == 1 and set(split.groups["train"]) | set(split.groups["val"]) == {"a", "b", "c",
                                                                                                          "d"}
    assert_disjoint(split)
    second = split_videos(index, {"split": "given", "fold": 2, "val_fraction": 0.5})
    assert second.groups["test"] == ["a"] and len(second.groups["val"]) == 2  # round(0.5 * 5) = 2
    assert split_videos(index, {"fold": 2, "split_seed": 0}).groups == split_videos(index, {"fold": 2}).groups


def test_given_keeps_the_files_sides_when_a_group_is_on_both():
    """HMDB51's split files are made class by class: one film may train in one class and test in another."""
    index = group_index(folds={"1": {"a": "train", "b": "train", "c": "train", "d": "test"}})
    next(v for v in index["videos"] if v["video_id"] == "wave/a")["split"] = {"1": "test"}
    split = split_videos(index, {"split": "given"})
    assert "a" in split.groups["test"] and "wave/a" in split.video_ids["test"]


@pytest.mark.parametrize("index, fold, message", [
    (group_index(), 1, "data.split: given fold 1 (data.fold), but this folder data ships no split folds; use kfold "
                       "or random"),
    (group_index(folds=FOLDS), 3, "data.split: given fold 3 (data.fold), but this ucf101 data ships the folds 1, 2; "
                                  "choose one of those")])
def test_given_is_refused_without_that_fold(index, fold, message):
    with pytest.raises(SplitError) as error:
        split_videos(index, {"split": "given", "fold": fold})
    assert str(error.value) == message


# ---------------------------------------------------------------- kfold

@pytest.mark.parametrize("folds, groups", [(5, None), (4, list(range(1, 17))), (3, None)])
def test_kfold_tests_every_group_exactly_once_and_never_puts_one_in_two_splits(folds, groups):
    index = kth_index()
    tested = []
    for fold in range(1, folds + 1):
        split = split_videos(index, {"split": "kfold", "folds": folds, "fold": fold, "groups": groups,
                                     "split_seed": 7})
        assert (split.protocol, split.fold) == ("kfold", fold)
        assert_disjoint(split)
        assert len(split.groups["val"]) == max(1, round(0.2 * (len(groups or range(25)) - len(split.groups["test"]))))
        tested += split.video_ids["test"]
        used = set(split.groups["train"]) | set(split.groups["val"]) | set(split.groups["test"])
        assert used == set(groups or range(1, 26))
    expected = [v["video_id"] for v in index["videos"] if groups is None or v["group"] in groups]
    assert sorted(tested) == sorted(expected)  # each video tested once over the folds
    sizes = [len(split_videos(index, {"split": "kfold", "folds": folds, "fold": k, "groups": groups})
                 .groups["test"]) for k in range(1, folds + 1)]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_depends_on_the_seed():
    first = split_videos(kth_index(), {"split": "kfold", "split_seed": 0})
    assert first.groups == split_videos(kth_index(), {"split": "kfold", "split_seed": 0}).groups
    assert first.groups != split_videos(kth_index(), {"split": "kfold", "split_seed": 1}).groups


@pytest.mark.parametrize("fold", [0, 6])
def test_kfold_refuses_a_fold_outside_its_folds(fold):
    with pytest.raises(SplitError, match=rf"^data.split: kfold: data.fold must be 1 to data.folds \(5\) with "
                                         rf"data.split kfold, got {fold}$"):
        split_videos(kth_index(), {"split": "kfold", "fold": fold})


# ---------------------------------------------------------------- random

def test_random_splits_groups_by_fractions_and_seed():
    index = group_index(groups=[f"g{i:02d}" for i in range(25)])
    split = split_videos(index, {})  # auto: no folds, not KTH
    assert split.protocol == "random" and split.fold is None
    assert [len(split.groups[p]) for p in ("train", "val", "test")] == [16, 4, 5]  # 5 = 0.2 * 25, 4 = 0.2 * 20
    assert_disjoint(split)
    assert split.groups == split_videos(index, {"split_seed": 0}).groups
    assert split.groups != split_videos(index, {"split_seed": 3}).groups
    small = split_videos(group_index(groups=["a", "b", "c"]), {"test_fraction": 0.01, "val_fraction": 0.01})
    assert [len(small.groups[p]) for p in ("train", "val", "test")] == [1, 1, 1]  # at least one group each
    other = split_videos(index, {"split": "random", "test_fraction": 0.4, "val_fraction": 0.5})
    assert [len(other.groups[p]) for p in ("train", "val", "test")] == [7, 8, 10]


# ---------------------------------------------------------------- data.groups

@pytest.mark.parametrize("protocol", ["course", "schuldt2004", "kfold", "random"])
def test_data_groups_restricts_every_protocol(protocol):
    keep = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22]
    split = split_videos(kth_index(), {"split": protocol, "groups": keep})
    used = {g for groups in split.groups.values() for g in groups}
    assert used <= set(keep) and all(v.split("_")[0] in {f"person{p:02d}" for p in keep}
                                     for ids in split.video_ids.values() for v in ids)
    given = split_videos(group_index(folds=FOLDS), {"groups": ["a", "b", "c", "e"]})
    assert {g for groups in given.groups.values() for g in groups} == {"a", "b", "c", "e"}


def test_data_groups_match_by_name_and_refuse_an_unknown_group():
    index = group_index(groups=["1", "2", "3", "4"])
    split = split_videos(index, {"groups": [1, 2, "3"]})  # a number in the config matches the name '1'
    assert {g for groups in split.groups.values() for g in groups} == {"1", "2", "3"}
    with pytest.raises(SplitError, match=r"^data.groups: 9 is not a group of this data \(its groups: 1, 2, 3, 4\); "):
        split_videos(index, {"groups": [1, 9]})


# ---------------------------------------------------------------- refusals

def refusal(index: dict, data: dict) -> str:
    with pytest.raises(SplitError) as error:
        split_videos(index, data)
    message = str(error.value)
    assert "\n" not in message and message.startswith("data.split: ")
    split_videos(index, data, strict=False)  # the lenient form loads what there is
    return message


def test_a_class_without_a_training_video_is_refused():
    index = kth_index()
    index["videos"] = [v for v in index["videos"] if not (v["class"] == "running" and v["group"] <= 14)]
    message = refusal(index, {})
    assert message.startswith("data.split: course leaves class 'running' without a training video (training persons: "
                              "1, 2, 3")


@pytest.mark.parametrize("data, part", [({"groups": [p for p in range(1, 17) if p != 15]}, "test"),
                                        ({"val_persons": [15]}, "val")])
def test_an_empty_split_is_refused(data, part):
    index = kth_index(persons=[p for p in range(1, 26) if p != 15])
    message = refusal(index, data)
    assert f"data.split: course leaves the {part} split empty" in message


def test_kfold_with_more_folds_than_groups_leaves_a_test_split_empty():
    message = refusal(group_index(groups=["a", "b", "c"]), {"split": "kfold", "folds": 4, "fold": 4})
    assert message == "data.split: kfold fold 4 leaves the test split empty (no video of its groups; the data holds " \
                      "groups a, b, c); use at most 3 data.folds"


def test_a_group_in_two_splits_is_refused(monkeypatch):
    monkeypatch.setattr(splits, "SCHULDT2004_PERSONS", {"train": tuple(range(1, 15)), "val": (14, 15),
                                                        "test": tuple(range(16, 26))})
    with pytest.raises(SplitError) as error:
        split_videos(kth_index(), {"split": "schuldt2004"}, strict=False)  # a definition: refused always
    message = str(error.value)
    assert message == "data.split: schuldt2004 puts person 14 in both the train and the val split; a person belongs " \
                      "to one split"


def test_the_protocols_are_named():
    assert PROTOCOLS == ("auto", "course", "schuldt2004", "given", "kfold", "random")
    with pytest.raises(SplitError, match=r"^data.split: 'leave-one-out' is not a protocol"):
        split_videos(kth_index(), {"split": "leave-one-out"})
    with pytest.raises(SplitError, match=r"^data.val_persons must list training persons 1-16 only, got \[20\] \(20 is "
                                         r"a test person\) \(data.split course\)"):
        split_videos(kth_index(), {"val_persons": [20]}, strict=False)

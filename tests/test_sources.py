"""src/data/sources/: each layout's reader on small folders made from the tiny twin's AVI videos.

The builders (:func:`make_folder`, :func:`make_ucf101`, :func:`make_hmdb51`) copy three of the twin's
actions (walking, boxing, handwaving; persons 1, 2, 15, 17; scenarios 1, 4: 24 videos) into each layout
under new class names; other test modules prepare them.
"""
from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.sources import LAYOUTS, VIDEO_SUFFIXES, detect_layout, scan
from src.data.sources.kth import ACTIONS, video_id

TWIN_ACTIONS = ("walking", "boxing", "handwaving")
TWIN_PERSONS, TWIN_SCENARIOS = (1, 2, 15, 17), (1, 4)
UCF_CLASSES = {"walking": "Walk", "boxing": "Box", "handwaving": "Wave"}       # classInd.txt's order: Walk, Box, Wave
HMDB_CLASSES = {"walking": "walk", "boxing": "punch", "handwaving": "wave"}
FOLDER_CLASSES = {"walking": "marche à pied", "boxing": "boxe", "handwaving": "hand wave"}
GROUP_NAMES = {1: "anna", 2: "ben", 15: "chloé", 17: "dmitri"}


def twin_videos(tiny_raw: Path):
    """``(action, person, scenario, path)`` of the 24 twin videos the builders use."""
    for action in TWIN_ACTIONS:
        for person in TWIN_PERSONS:
            for scenario in TWIN_SCENARIOS:
                yield action, person, scenario, tiny_raw / action / f"{video_id(person, action, scenario)}_uncomp.avi"


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


def folder_name(action: str, person: int, scenario: int) -> str:
    """A video's path under a :func:`make_folder` root: spaces, non-ASCII letters, one upper-case suffix,
    and one video a folder deeper (its class is still the first folder)."""
    cls = FOLDER_CLASSES[action]
    suffix = ".AVI" if (person, scenario) == (2, 4) else ".avi"
    deeper = "more takes/" if (action, person) == ("handwaving", 17) else ""
    return f"{cls}/{deeper}clip {person} é {scenario}{suffix}"


def make_folder(tiny_raw: Path, root: Path, groups: bool = False) -> Path:
    """``root/mine``: a folder of class subfolders (see :func:`folder_name`), with a ``groups.csv`` (the
    person's name) when ``groups``."""
    raw = root / "mine"
    rows = ["video,group"]
    for action, person, scenario, path in twin_videos(tiny_raw):
        _copy(path, raw / folder_name(action, person, scenario))
        rows.append(f"{folder_name(action, person, scenario)},{GROUP_NAMES[person]}")
    if groups:
        (raw / "groups.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return raw


def ucf_name(action: str, person: int, scenario: int) -> str:
    cls = UCF_CLASSES[action]
    return f"{cls}/v_{cls}_g{person:02d}_c{scenario:02d}.avi"


def make_ucf101(tiny_raw: Path, root: Path, lists_in: Path | None = None) -> Path:
    """``root/ucf``: ``UCF-101/<Class>/v_<Class>_gNN_cMM.avi`` (NN: the person, MM: the scenario) and the
    split lists in ``ucfTrainTestlist/`` (or ``lists_in``): fold 1 tests group g17, fold 2 group g01;
    trainlist01.txt also names a video that is not there."""
    raw = root / "ucf"
    lists = lists_in or raw / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(UCF_CLASSES.values(), 1)))
    files = {(1, "train"): [], (1, "test"): [], (2, "train"): [], (2, "test"): []}
    for action, person, scenario, path in twin_videos(tiny_raw):
        _copy(path, raw / "UCF-101" / ucf_name(action, person, scenario))
        label = list(UCF_CLASSES).index(action) + 1
        for fold, test_person in ((1, 17), (2, 1)):
            side = "test" if person == test_person else "train"
            files[fold, side].append(ucf_name(action, person, scenario) + (f" {label}" if side == "train" else ""))
    files[1, "train"].append("Walk/v_Walk_g25_c01.avi 1")
    for (fold, side), lines in files.items():
        (lists / f"{side}list0{fold}.txt").write_text("\n".join(lines) + "\n")
    return raw


def hmdb_name(action: str, person: int, scenario: int) -> str:
    return f"Film{person:02d}_{HMDB_CLASSES[action]}_u_nm_np1_fr_goo_{scenario}.avi"


def make_hmdb51(tiny_raw: Path, root: Path) -> Path:
    """``root/hmdb``: ``<class>/Film<NN>_<class>_u_nm_np1_fr_goo_<d>.avi`` and
    ``testTrainMulti_7030_splits/<class>_test_split<K>.txt``: fold 1 tests Film17, fold 2 Film01; person 2's
    scenario 4 is unused (0) in fold 1."""
    raw = root / "hmdb"
    lines = {}
    for action, person, scenario, path in twin_videos(tiny_raw):
        cls = HMDB_CLASSES[action]
        _copy(path, raw / cls / hmdb_name(action, person, scenario))
        for fold, test_person in ((1, 17), (2, 1)):
            side = 2 if person == test_person else 0 if (fold, person, scenario) == (1, 2, 4) else 1
            lines.setdefault((cls, fold), []).append(f"{hmdb_name(action, person, scenario)} {side}")
    splits = raw / "testTrainMulti_7030_splits"
    splits.mkdir()
    for (cls, fold), rows in lines.items():
        (splits / f"{cls}_test_split{fold}.txt").write_text("\n".join(rows) + "\n")
    return raw


COLOUR_CLASSES = {"Red": (230, 40, 40), "Blue": (40, 40, 230)}  # a square of this colour moves on gray


def write_frame_folder(folder: Path, colour: tuple[int, int, int], frames: int = 12, size: int = 24,
                       suffix: str = ".png") -> Path:
    """``folder/frame_001.png ...``: a ``colour`` square moving right on a mid-gray ground, RGB ``size`` x ``size``."""
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(frames):
        image = np.full((size, size, 3), 128, np.uint8)
        x = t % (size - 8)
        image[8:16, x:x + 8] = colour
        Image.fromarray(image).save(folder / f"frame_{t + 1:03d}{suffix}")
    return folder


def make_colour_ucf101(root: Path, groups: int = 5, frames: int = 12) -> Path:
    """``root/colour_ucf``: UCF101's layout of frame folders (``UCF-101/<Class>/v_<Class>_gNN_c01/``, PNG) of
    :data:`COLOUR_CLASSES`, a video per class and group, and split lists naming them ``.avi`` as UCF101 does
    (fold 1 tests the last group)."""
    raw = root / "colour_ucf"
    lists = {"train": [], "test": []}
    for label, (name, colour) in enumerate(COLOUR_CLASSES.items(), 1):
        for group in range(1, groups + 1):
            video = f"{name}/v_{name}_g{group:02d}_c01"
            write_frame_folder(raw / "UCF-101" / video, colour, frames)
            side = "test" if group == groups else "train"
            lists[side].append(f"{video}.avi" + (f" {label}" if side == "train" else ""))
    (raw / "ucfTrainTestlist").mkdir()
    for side, lines in lists.items():
        (raw / "ucfTrainTestlist" / f"{side}list01.txt").write_text("\n".join(lines) + "\n")
    return raw


# ---------------------------------------------------------------- KTH

def test_kth_scan_lists_the_twin_with_persons_and_annotations(tiny_raw):
    notes = []
    listing = scan(tiny_raw, "kth", notes)
    assert (listing.source, listing.classes, listing.group_kind, listing.folds) == ("kth", list(ACTIONS), "person", [])
    assert len(listing.videos) == 48 and notes == []
    ids = [v.video_id for v in listing.videos]
    assert ids == sorted(ids) and ids[0] == "person01_boxing_d1"
    first = listing.videos[0]
    assert (first.class_name, first.group, first.extra, first.split) == (
        "boxing", 1, {"person": 1, "action": "boxing", "scenario": 1}, {})
    assert first.sequences and all(a < b for a, b in first.sequences)
    assert detect_layout(tiny_raw) == "kth"


# ---------------------------------------------------------------- a folder of class subfolders

def test_folder_without_groups_csv_makes_every_video_its_own_group(tiny_raw, tmp_path):
    raw = make_folder(tiny_raw, tmp_path)
    shutil.copy(next(iter(twin_videos(tiny_raw)))[3], raw / "loose.avi")  # no class folder
    (raw / "boxe" / "notes.txt").write_text("not a video")
    assert detect_layout(raw) == "folder"
    notes = []
    listing = scan(raw, "auto", notes)
    assert (listing.source, listing.group_kind, listing.folds) == ("folder", "video", [])
    assert listing.classes == sorted(FOLDER_CLASSES.values()) == ["boxe", "hand wave", "marche à pied"]
    assert len(listing.videos) == 24
    by_id = {v.video_id: v for v in listing.videos}
    deeper = by_id["hand wave/more takes/clip 17 é 1"]
    assert (deeper.class_name, deeper.group, deeper.sequences) == ("hand wave", deeper.video_id, None)
    assert by_id["boxe/clip 2 é 4"].path.name == "clip 2 é 4.AVI"
    assert len({v.group for v in listing.videos}) == 24
    assert len(notes) == 3, notes
    assert notes[0].startswith(f"note: {raw}: ignored 1 non-video file(s)")
    assert notes[1].startswith(f"warning: {raw}: skipped 1 video(s) outside a class folder") and "loose.avi" in notes[1]
    assert notes[2].startswith(f"warning: {raw}: no groups.csv, so every video is its own group: clips of one "
                               f"person may then fall into both training and test")


def test_folder_with_groups_csv_takes_its_groups(tiny_raw, tmp_path):
    raw = make_folder(tiny_raw, tmp_path, groups=True)
    notes = []
    listing = scan(raw, "folder", notes)
    assert notes == [] and listing.group_kind == "groups.csv"
    assert sorted({v.group for v in listing.videos}) == sorted(GROUP_NAMES.values())
    assert {v.video_id: v.group for v in listing.videos}["marche à pied/clip 15 é 1"] == "chloé"
    text = (raw / "groups.csv").read_text(encoding="utf-8")
    (raw / "groups.csv").write_text(unicodedata.normalize("NFD", text), encoding="utf-8")  # as macOS may write it
    assert [v.group for v in scan(raw, "folder", []).videos] == [v.group for v in listing.videos]


BAD_GROUPS = {  # how groups.csv is broken -> what the error line names
    "a video without a row": (lambda rows: [row for row in rows if not row.startswith("boxe/clip 1 é 4.avi")],
                              ["1 video(s) have no row", "boxe/clip 1 é 4.avi"]),
    "a row naming no video": (lambda rows: rows + ["boxe/clip 9.avi,zoe"], ["row 26", "boxe/clip 9.avi",
                                                                             "which is no video"]),
    "a video twice": (lambda rows: rows + [rows[3]], ["row 26", "again (first on row 4)"]),
    "no header": (lambda rows: rows[1:], ["not the header 'video,group'"]),
    "an empty group": (lambda rows: rows[:2] + [rows[2].split(",")[0] + ","] + rows[3:],
                       ["row 3", "not 'video,group'"]),
    "three fields": (lambda rows: rows[:2] + [rows[2] + ",x"] + rows[3:], ["row 3"]),
}


@pytest.mark.parametrize("case", list(BAD_GROUPS))
def test_a_bad_groups_csv_is_one_line_naming_it_and_the_row(tiny_raw, tmp_path, case):
    raw = make_folder(tiny_raw, tmp_path, groups=True)
    breaks, names = BAD_GROUPS[case]
    rows = sorted((raw / "groups.csv").read_text(encoding="utf-8").splitlines()[1:])
    (raw / "groups.csv").write_text("\n".join(breaks(["video,group", *rows])) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        scan(raw, "auto", [])
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{raw / 'groups.csv'}: ")
    for name in names:
        assert name in message, message


def test_a_folder_without_class_folders_is_refused(tiny_raw, tmp_path):
    raw = tmp_path / "flat"
    _copy(next(iter(twin_videos(tiny_raw)))[3], raw / "holiday.avi")
    with pytest.raises(FileNotFoundError, match=r"holds no video in a class folder .*holiday.avi"):
        scan(raw, "auto", [])


# ---------------------------------------------------------------- UCF101

@pytest.mark.parametrize("lists_apart", [False, True], ids=["lists under raw", "--splits"])
def test_ucf101_reads_groups_folds_and_the_class_index(tiny_raw, tmp_path, lists_apart):
    lists = tmp_path / "lists" if lists_apart else None
    raw = make_ucf101(tiny_raw, tmp_path, lists_in=lists)
    assert detect_layout(raw, lists) == "ucf101"
    notes = []
    listing = scan(raw, "auto", notes, splits=lists)
    assert (listing.source, listing.group_kind, listing.folds) == ("ucf101", "ucf101 group (_gNN_)", ["1", "2"])
    assert listing.classes == ["Walk", "Box", "Wave"]  # classInd.txt's order, not sorted
    assert len(listing.videos) == 24 and {v.group for v in listing.videos} == {"g01", "g02", "g15", "g17"}
    video = next(v for v in listing.videos if v.video_id == "UCF-101/Box/v_Box_g17_c04")
    assert (video.class_name, video.group, video.split) == ("Box", "g17", {"1": "test", "2": "train"})
    assert len(notes) == 1 and "1 video(s) of fold 1's lists are not under" in notes[0]
    assert "Walk/v_Walk_g25_c01.avi" in notes[0]  # as the list writes it, not lower-cased
    if lists_apart:
        assert detect_layout(raw) == "folder"  # without --splits: no list under raw


def test_ucf101_refusals(tiny_raw, tmp_path):
    raw = make_ucf101(tiny_raw, tmp_path)
    lists = raw / "ucfTrainTestlist"
    (lists / "classInd.txt").write_text("1 Walk\n2 Box\n")
    with pytest.raises(ValueError, match=r"classInd.txt: lists no class 'Wave'"):
        scan(raw, "ucf101", [])
    (lists / "classInd.txt").unlink()
    (lists / "testlist02.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"trainlist02.txt: no testlist02.txt beside it"):
        scan(raw, "ucf101", [])
    (lists / "trainlist02.txt").unlink()
    listing = scan(raw, "ucf101", [])
    assert listing.classes == ["Box", "Walk", "Wave"] and listing.folds == ["1"]  # sorted without classInd.txt


# ---------------------------------------------------------------- HMDB51

def test_hmdb51_reads_source_films_and_folds(tiny_raw, tmp_path):
    raw = make_hmdb51(tiny_raw, tmp_path)
    assert detect_layout(raw) == "hmdb51"
    notes = []
    listing = scan(raw, "auto", notes)
    assert notes == []
    assert (listing.source, listing.group_kind, listing.folds) == ("hmdb51", "hmdb51 source film", ["1", "2"])
    assert listing.classes == ["punch", "walk", "wave"]
    assert {v.group for v in listing.videos} == {"Film01", "Film02", "Film15", "Film17"}
    by_id = {v.video_id: v for v in listing.videos}
    assert by_id["wave/Film02_wave_u_nm_np1_fr_goo_4"].split == {"2": "train"}  # 0: unused in fold 1
    assert by_id["walk/Film17_walk_u_nm_np1_fr_goo_1"].split == {"1": "test", "2": "train"}


def test_hmdb51_bad_line_names_the_file(tiny_raw, tmp_path):
    raw = make_hmdb51(tiny_raw, tmp_path)
    path = raw / "testTrainMulti_7030_splits" / "wave_test_split1.txt"
    path.write_text(path.read_text() + "Film99_wave_x.avi 7\n")
    with pytest.raises(ValueError, match=r"wave_test_split1.txt: line 9 is 'Film99_wave_x.avi 7', not "
                                         r"'<file> <0\|1\|2>'"):
        scan(raw, "hmdb51", [])


# ---------------------------------------------------------------- arguments

def test_scan_refuses_an_unknown_layout_and_misplaced_splits(tiny_raw, tmp_path):
    assert LAYOUTS == ("auto", "kth", "folder", "ucf101", "hmdb51") and ".avi" in VIDEO_SUFFIXES
    with pytest.raises(ValueError, match=r"^layout: 'ucf' is not a layout; use one of auto, kth, folder"):
        scan(tiny_raw, "ucf", [])
    with pytest.raises(ValueError, match=r"layout kth reads no split files"):
        scan(tiny_raw, "auto", [], splits=tiny_raw)
    with pytest.raises(FileNotFoundError, match=r"^splits .*nowhere: no such folder"):
        scan(tiny_raw, "ucf101", [], splits=tmp_path / "nowhere")


def test_auto_says_when_kth_names_are_read_as_a_folder(tiny_raw, tmp_path):
    raw = tmp_path / "raw"
    _copy(tiny_raw / "boxing" / "person01_boxing_d1_uncomp.avi", raw / "boxing" / "person01_boxing_d1_uncomp.avi")
    _copy(tiny_raw / "boxing" / "person01_boxing_d4_uncomp.avi", raw / "boxing" / "holiday.avi")
    notes = []
    listing = scan(raw, "auto", notes)
    assert listing.source == "folder"
    assert any(n.startswith(f"note: {raw}: read as layout folder") and "layout='kth'" in n for n in notes)
    kth = scan(raw, "kth", notes := [])
    assert [v.video_id for v in kth.videos] == ["person01_boxing_d1"] and "holiday.avi" in notes[0]


# ---------------------------------------------------------------- issue 33: a user's own folders

def test_frame_folders_in_class_folders_are_videos(tmp_path):
    raw = tmp_path / "mine"
    write_frame_folder(raw / "red" / "take 1", COLOUR_CLASSES["Red"])
    write_frame_folder(raw / "red" / "take.2", COLOUR_CLASSES["Red"], suffix=".JPG")  # a dot in the name stays
    write_frame_folder(raw / "blue" / "take 1", COLOUR_CLASSES["Blue"])
    (raw / "blue" / "notes.txt").write_text("not a video")
    notes = []
    listing = scan(raw, "auto", notes)
    assert listing.source == "folder" and listing.classes == ["blue", "red"]
    assert [(v.video_id, v.class_name, v.path.is_dir()) for v in listing.videos] == [
        ("blue/take 1", "blue", True), ("red/take 1", "red", True), ("red/take.2", "red", True)]
    assert any("read 3 frame folder(s) as videos" in n and "blue/take 1" in n for n in notes)
    assert any("ignored 1 non-video file(s), e.g. blue/notes.txt" in n for n in notes)  # not the 36 images


def test_ucf101_frame_folders_meet_the_lists_avi_names(tmp_path):
    raw = make_colour_ucf101(tmp_path)
    listing = scan(raw, "auto", notes := [])
    assert (listing.source, listing.classes, listing.folds) == ("ucf101", ["Blue", "Red"], ["1"])
    assert {v.video_id: v.split for v in listing.videos}["UCF-101/Red/v_Red_g05_c01"] == {"1": "test"}
    assert all(v.split for v in listing.videos) and not [n for n in notes if "left out" in n]


@pytest.mark.parametrize("folders, layout", [(("Punch", "Clap"), "folder"), (("boxing", "Handclapping"), "kth"),
                                             (("all",), "kth")])
def test_auto_lets_class_folders_win_over_kth_names(tiny_raw, tmp_path, folders, layout):
    """KTH-named files in one's own class folders (Punch/, Clap/) are read by their folders; folders that are
    their actions (in any case), or one folder holding them all, leave them KTH."""
    raw = tmp_path / "raw"
    for folder, action in zip(folders * 2, ("boxing", "handclapping")):
        for source in sorted((tiny_raw / action).glob("person01_*.avi")):
            _copy(source, raw / folder / source.name)
    notes = []
    listing = scan(raw, "auto", notes)
    assert listing.source == layout
    said = [n for n in notes if "class folders win over file names" in n]
    if layout == "folder":
        assert listing.classes == ["Clap", "Punch"] and len(said) == 1 and "layout='kth'" in said[0]
        assert "Clap/person01_handclapping_d1_uncomp.avi" in said[0]
        assert scan(raw, "kth", []).source == "kth"  # the names, when asked for
    else:
        assert listing.classes == list(ACTIONS) and said == []


def test_splits_are_found_at_any_depth_under_the_folder_given(tiny_raw, tmp_path):
    raw = make_hmdb51(tiny_raw, tmp_path)
    above = tmp_path / "downloads"
    (above / "hmdb51_splits").mkdir(parents=True)
    shutil.move(raw / "testTrainMulti_7030_splits", above / "hmdb51_splits")
    for layout in ("auto", "hmdb51"):
        listing = scan(raw, layout, [], splits=above)
        assert (listing.source, listing.folds) == ("hmdb51", ["1", "2"])


@pytest.mark.parametrize("layout", ["ucf101", "hmdb51"])
def test_an_explicit_split_layout_without_split_files_is_an_error(tiny_raw, tmp_path, layout):
    raw = (make_ucf101 if layout == "ucf101" else make_hmdb51)(tiny_raw, tmp_path)
    for lists in [*raw.rglob("*list0*.txt"), *raw.rglob("*_test_split*.txt")]:
        lists.unlink()
    empty = tmp_path / "lists"
    empty.mkdir()
    for splits, where in ((None, str(raw)), (empty, f"splits {empty}")):
        with pytest.raises(FileNotFoundError) as error:
            scan(raw, layout, [], splits=splits)
        message = str(error.value)
        assert "\n" not in message and message.startswith(f"{where}: no ")
        assert f"layout {layout} has no split" in message
        assert "splits=DIR" in message and "layout='folder'" in message

"""Facts about the KTH-Actions dataset: its classes, persons, scenarios, names and
``00sequences.txt``.

KTH-Actions (Schuldt, Laptev, Caputo, ICPR 2004): 6 actions x 25 persons x 4 scenarios,
599 videos (person13_handclapping_d3 does not exist), 160x120 grayscale at 25 fps,
named like ``person01_boxing_d1_uncomp.avi``. ``00sequences.txt`` gives, for every
video, the 1-based inclusive frame ranges of the four subsequences in which the
action is performed.

The layout :func:`scan` reads: KTH-named videos anywhere under the raw folder (the download puts
them in ``<action>/`` folders), and the first ``00sequences.txt`` under it. Label i is ``ACTIONS[i]``
(all six classes, whichever are present); the group of a video is its person; KTH ships no split
folds (its protocols are persons: :mod:`src.data.splits`).
"""
from __future__ import annotations

import re
from pathlib import Path

from src.data.sources.common import HOW_TO_GET_DATA, VIDEO_SUFFIXES, Listing, VideoRecord, one_per_id, video_files

ACTIONS = ("walking", "jogging", "running", "boxing", "handwaving", "handclapping")
"""Class names; a label is the index in this tuple."""

PERSONS = tuple(range(1, 26))
TRAIN_PERSONS = tuple(range(1, 17))  # the course split: persons 1-16 train ...
TEST_PERSONS = tuple(range(17, 26))  # ... and 17-25 test
DEFAULT_VAL_PERSONS = (15, 16)       # carved from the training persons for model selection
SCENARIOS = (1, 2, 3, 4)             # d1 outdoors, d2 scale variation, d3 other clothes, d4 indoors
MISSING_VIDEOS = ("person13_handclapping_d3",)

_VIDEO_NAME = re.compile(
    r"^person(?P<person>\d{2})_(?P<action>" + "|".join(ACTIONS) + r")_d(?P<scenario>[1-4])(?:_uncomp)?$"
)


def video_id(person: int, action: str, scenario: int) -> str:
    """``video_id(1, 'boxing', 2) -> 'person01_boxing_d2'``."""
    return f"person{person:02d}_{action}_d{scenario}"


def parse_video_name(name: str) -> dict | None:
    """Parse a KTH file or folder name (extension and ``_uncomp`` optional).

    Returns ``{'video_id', 'person', 'action', 'label', 'scenario'}`` or None when the
    name is not a KTH video name.
    """
    stem = Path(name).name.split(".")[0]
    m = _VIDEO_NAME.match(stem)
    if m is None:
        return None
    person, action, scenario = int(m["person"]), m["action"], int(m["scenario"])
    return {
        "video_id": video_id(person, action, scenario),
        "person": person,
        "action": action,
        "label": ACTIONS.index(action),
        "scenario": scenario,
    }


def all_video_ids() -> list[str]:
    """The 599 video ids of KTH, in person, action, scenario order."""
    return [video_id(p, a, d) for p in PERSONS for a in ACTIONS for d in SCENARIOS
            if video_id(p, a, d) not in MISSING_VIDEOS]


def parse_sequences(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Read ``00sequences.txt``.

    Returns ``{video_id: [(start, end), ...]}`` with 0-based, end-exclusive frame ranges
    (the file's ranges are 1-based and inclusive). Videos marked ``*missing*`` and
    lines that are not annotations are left out.
    """
    path = Path(path)
    sequences: dict[str, list[tuple[int, int]]] = {}
    for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if len(fields) < 2 or parse_video_name(fields[0]) is None or "*missing*" in line:
            continue
        if fields[1] != "frames":
            raise ValueError(f"{path}:{line_no}: expected '<video> frames a-b, c-d, ...'; got {line!r}")
        ranges = []
        for part in "".join(fields[2:]).split(","):
            if not part:
                continue
            a, b = part.split("-")
            ranges.append((int(a) - 1, int(b)))
        sequences[parse_video_name(fields[0])["video_id"]] = ranges
    return sequences


def format_sequences(sequences: dict[str, list[tuple[int, int]]]) -> str:
    """Inverse of :func:`parse_sequences`: the text of a ``00sequences.txt`` file."""
    lines = []
    for vid, ranges in sequences.items():
        spans = ", ".join(f"{a + 1}-{b}" for a, b in ranges)
        lines.append(f"{vid}\t\tframes\t{spans}")
    return "\n".join(lines) + "\n"


KNOWN_FILES = ("00sequences.txt", "synthetic.json")  # expected in a KTH raw folder besides the videos


def find_sequences(raw: Path, notes: list[str]) -> dict[str, list[tuple[int, int]]]:
    """The annotations of the first ``00sequences.txt`` under ``raw``, or {} when there is none (then
    a line is added to ``notes``)."""
    found = sorted(raw.rglob("00sequences.txt"))
    if not found:
        notes.append(f"warning: {raw}: no 00sequences.txt; every video gets one sequence spanning it")
        return {}
    try:
        return parse_sequences(found[0])
    except (OSError, ValueError) as e:  # a malformed range ('1-a', '5') does not name the file by itself
        message = str(e)
        raise ValueError(message if message.startswith(str(found[0])) else
                         f"{found[0]}: not a KTH 00sequences.txt ({message}); fix or delete it") from None


def scan(raw: Path, notes: list[str]) -> Listing:
    """The KTH-named videos under ``raw`` (one per video id), with their persons and annotations; what is
    left out or missing is added to ``notes``. No KTH-named video is a FileNotFoundError naming ``raw``."""
    videos = video_files(raw, notes, known=lambda path: path.name in KNOWN_FILES)
    unnamed = [p for p in videos if parse_video_name(p.name) is None]
    if unnamed:
        notes.append(f"warning: {raw}: skipped {len(unnamed)} video(s) without a KTH name "
                     f"(personXX_<action>_dY_uncomp.avi): {', '.join(str(p.relative_to(raw)) for p in unnamed[:5])}"
                     f"{' ...' if len(unnamed) > 5 else ''}")
    named = [(p, parse_video_name(p.name)) for p in videos if p not in unnamed]
    if not named:
        unnamed_hint = (f" ({len(unnamed)} without a KTH name, e.g. {unnamed[0].relative_to(raw)}: KTH names them "
                        f"personXX_<action>_dY_uncomp.avi; layout='folder' reads class folders)" if unnamed else "")
        raise FileNotFoundError(f"{raw}: holds no KTH-named video ({'/'.join(VIDEO_SUFFIXES)}){unnamed_hint}; "
                                f"{HOW_TO_GET_DATA}")
    present = {info["action"] for _, info in named}
    if missing := [a for a in ACTIONS if a not in present]:
        notes.append(f"warning: {raw}: no video of {', '.join(missing)} (missing class folder?); only "
                     f"{len(present)} of the {len(ACTIONS)} actions will be prepared; {HOW_TO_GET_DATA}")
    sequences = find_sequences(raw, notes)
    records = [VideoRecord(path=p, video_id=info["video_id"], class_name=info["action"], group=info["person"],
                           sequences=sequences.get(info["video_id"]),
                           extra={key: info[key] for key in ("person", "action", "scenario")})
               for p, info in named]
    return Listing(source="kth", classes=list(ACTIONS), videos=one_per_id(records, raw, notes), group_kind="person",
                   folds=[])

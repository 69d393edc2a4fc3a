"""Download KTH-Actions: the six action zips and ``00sequences.txt``, then extract them.

    python -m src.data download --root data/kth_raw [--base-url URL]

Every file is fetched into ``<name>.part`` (resumed with an HTTP Range request when a
previous attempt was cut off) and renamed to ``<name>`` only once it is complete. A zip
is then checked (a real zip, not an HTML page, every member's CRC, videos of the right
action), extracted into a temporary folder beside ``root/<action>`` and renamed to it,
and deleted. So ``root/<action>/`` exists only when it is complete, and a rerun skips it::

    root/00sequences.txt
    root/walking/person01_walking_d1_uncomp.avi
    ...
    root/handclapping/person25_handclapping_d4_uncomp.avi
"""
from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from src.data.sources.kth import ACTIONS, all_video_ids, parse_sequences, parse_video_name

DEFAULT_BASE_URL = "https://www.csc.kth.se/cvap/actions/"
SEQUENCES_FILE = "00sequences.txt"
ZIP_MAGIC = b"PK\x03\x04"


class DownloadError(RuntimeError):
    """A file could not be fetched or is not what KTH serves; the message is one line."""


def _looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes.lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def fetch(url: str, dest: str | Path, magic: bytes | None = None, max_attempts: int = 5,
          retry_wait: float = 1.0, timeout: float = 60.0, chunk_size: int = 1 << 16) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if an earlier attempt left one.

    An interrupted transfer is resumed with ``Range: bytes=<have>-`` (a server that answers
    200 instead of 206 is read again from the start), at most ``max_attempts`` times,
    waiting ``retry_wait`` x the attempt number seconds in between. A server that cannot
    be reached at all, or answers 4xx, is not retried. An HTML answer (Content-Type
    ``text/html`` or HTML first bytes), or first bytes other than ``magic`` when given,
    raises :class:`DownloadError` at once and writes nothing.
    ``dest`` appears (by rename) only when all the bytes announced by the server arrived.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    last_problem = "no attempt made"
    for attempt in range(max_attempts):
        if attempt:
            time.sleep(retry_wait * attempt)
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = have > 0 and response.status == 206
                if not resumed:
                    have = 0  # no partial file, or the server ignored Range: start over
                content_type = response.headers.get("Content-Type", "")
                if content_type.split(";")[0].strip().lower() == "text/html":
                    raise DownloadError(
                        f"{url} answered with an HTML page (Content-Type {content_type}), not the file: "
                        f"the address has probably moved; pass --base-url with a working mirror "
                        f"(default {DEFAULT_BASE_URL})")
                length = response.headers.get("Content-Length")
                total = have + int(length) if length is not None else None
                with open(part, "ab" if resumed else "wb") as f, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=dest.name, leave=False) as bar:
                    first = not resumed
                    while chunk := response.read(chunk_size):
                        if first:
                            first = False
                            if _looks_like_html(chunk) or (magic is not None and not chunk.startswith(magic)):
                                f.close()
                                part.unlink()
                                kind = "an HTML page" if _looks_like_html(chunk) else f"bytes {chunk[:8]!r}"
                                raise DownloadError(
                                    f"{url} starts with {kind}, not the expected file: the address has "
                                    f"probably moved; pass --base-url with a working mirror "
                                    f"(default {DEFAULT_BASE_URL})")
                        f.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as e:
            if e.code == 416 and part.exists():  # our .part is not a prefix of the file: start over
                part.unlink()
                last_problem = "HTTP 416 on resume"
                continue
            if 400 <= e.code < 500:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the address or pass --base-url "
                                    f"with a working mirror (default {DEFAULT_BASE_URL})") from None
            last_problem = f"HTTP {e.code} {e.reason}"
            continue
        except urllib.error.URLError as e:  # no connection at all: retrying will not help
            raise DownloadError(f"{url}: cannot connect ({e.reason}); check the network, or pass --base-url "
                                f"with a working mirror (default {DEFAULT_BASE_URL})") from None
        except (http.client.HTTPException, OSError) as e:  # cut off mid-transfer: resume
            last_problem = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            continue
        size = part.stat().st_size
        if total is not None and size < total:
            last_problem = f"connection closed after {size} of {total} bytes"
            continue
        os.replace(part, dest)
        return dest
    raise DownloadError(f"{url}: gave up after {max_attempts} attempts ({last_problem}); "
                        f"{part.name} is kept, rerun the same command to resume")


def check_zip(path: str | Path, action: str) -> list[zipfile.ZipInfo]:
    """Check that ``path`` is a complete zip of KTH ``action`` videos; return their members.

    Raises :class:`DownloadError` for a truncated or corrupt zip, or one that holds no
    ``personXX_<action>_dY_uncomp.avi`` or videos of another action. Expected videos that
    are absent are only noted (a mirror may be partial).
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise DownloadError(f"{path}: not a valid zip (truncated download or wrong file, "
                            f"{path.stat().st_size} bytes); delete it and rerun, or pass --base-url")
    try:
        with zipfile.ZipFile(path) as zf:
            bad_member = zf.testzip()
            members = [m for m in zf.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DownloadError(f"{path}: corrupt zip ({e}); delete it and rerun, or pass --base-url") from None
    if bad_member is not None:
        raise DownloadError(f"{path}: member {bad_member} fails its CRC check (corrupt download); "
                            f"delete it and rerun, or pass --base-url")
    videos, foreign = [], []
    for m in members:
        info = parse_video_name(Path(m.filename).name) if m.filename.endswith(".avi") else None
        if info is None:
            continue
        (videos if info["action"] == action else foreign).append(m)
    if foreign:
        raise DownloadError(f"{path}: holds videos of another action (e.g. {foreign[0].filename}), "
                            f"expected only {action}; the mirror serves the wrong file")
    if not videos:
        raise DownloadError(f"{path}: holds no {action} video (personXX_{action}_dY_uncomp.avi); "
                            f"the mirror serves the wrong file, pass another --base-url")
    found = {parse_video_name(Path(m.filename).name)["video_id"] for m in videos}
    missing = [v for v in all_video_ids() if f"_{action}_" in v and v not in found]
    if missing:
        tqdm.write(f"note: {path.name} lacks {len(missing)} of the {len(missing) + len(found)} "
              f"{action} videos (e.g. {missing[0]})")
    return videos


def extract(zip_path: str | Path, action: str, root: str | Path) -> Path:
    """Extract the checked videos of ``zip_path`` to ``root/<action>/<name>.avi``, atomically.

    The videos go to a temporary folder beside the target, renamed to ``root/<action>``
    once all are written; on any failure the temporary folder is removed.
    """
    root, zip_path = Path(root), Path(zip_path)
    target = root / action
    members = check_zip(zip_path, action)
    tmp = Path(tempfile.mkdtemp(prefix=f".{action}.", suffix=".tmp", dir=root))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for m in tqdm(members, desc=f"extract {action}", unit="video", leave=False):
                with zf.open(m) as src, open(tmp / Path(m.filename).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def download(root: str | Path, base_url: str = DEFAULT_BASE_URL, retry_wait: float = 1.0) -> Path:
    """Fetch and extract KTH-Actions into ``root`` (see the module docstring); returns ``root``.

    ``retry_wait`` is passed to :func:`fetch` (seconds between attempts to resume a file).
    Actions already extracted are skipped. Each file that fails is reported in one line and
    the others still proceed; :class:`DownloadError` is raised at the end if any failed.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".*.tmp"):  # a temporary extraction folder left by a killed run
        shutil.rmtree(stale)
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    failures = []

    sequences = root / SEQUENCES_FILE
    if not sequences.is_file():
        try:
            fetch(base_url + SEQUENCES_FILE, sequences, retry_wait=retry_wait)
            if not parse_sequences(sequences):
                sequences.unlink()
                raise DownloadError(f"{base_url + SEQUENCES_FILE}: no video annotation in it; "
                                    f"pass --base-url with a working mirror")
        except (DownloadError, ValueError) as e:
            failures.append(SEQUENCES_FILE)
            tqdm.write(f"error: {e}")

    for action in tqdm(ACTIONS, desc="KTH actions", unit="zip"):
        if (root / action).is_dir():
            tqdm.write(f"{action}: already extracted in {root / action}, skipped")
            continue
        zip_path = root / f"{action}.zip"
        try:
            if not zip_path.is_file():
                fetch(base_url + zip_path.name, zip_path, magic=ZIP_MAGIC, retry_wait=retry_wait)
            try:
                extract(zip_path, action, root)
            except DownloadError:
                zip_path.unlink()  # a bad file must not pass for a good one on the next run
                raise
            zip_path.unlink()
        except DownloadError as e:
            failures.append(zip_path.name)
            tqdm.write(f"error: {e}")

    if failures:
        raise DownloadError(f"{len(failures)} of {len(ACTIONS) + 1} files failed ({', '.join(failures)}); "
                            f"see the errors above, then rerun the same command to resume")
    print(f"KTH-Actions is in {root}: {len(ACTIONS)} action folders and {SEQUENCES_FILE}")
    return root

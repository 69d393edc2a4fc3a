"""Download KTH-Actions: the six action zips and ``00sequences.txt``, then extract them.

    python -m src.data download --root data/kth_raw [--base-url URL] [--deadline SECONDS]

Every file is fetched into ``<name>.part`` (resumed with an HTTP Range request when a
previous attempt was cut off or stalled, from the start when the server ignores Range) and
renamed to ``<name>`` only once all the bytes of its Content-Length arrived, no more, within
its deadline (else its ``.part`` is kept for the next run). ``00sequences.txt`` must annotate
all 599 videos. A zip is then checked (a real zip, not an HTML page, every member's CRC, videos
of the right action), extracted into a temporary folder beside ``root/<action>`` and renamed to
it, and deleted. So ``root/<action>/`` exists only when it is complete, and a rerun skips it::

    root/00sequences.txt
    root/walking/person01_walking_d1_uncomp.avi
    ...
    root/handclapping/person25_handclapping_d4_uncomp.avi

A file that fails is logged in one line and the others go on; the call then raises
:class:`DownloadError` naming the failed files.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from src.data.sources.kth import ACTIONS, all_video_ids, parse_sequences, parse_video_name

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.csc.kth.se/cvap/actions/"
DEFAULT_DEADLINE = 3600.0
"""Seconds a file may take, all attempts together (the largest zip, about 250 MB, needs 20 min at 200 kB/s)."""
SEQUENCES_FILE = "00sequences.txt"
SEQUENCES_SHA256 = "e3061f9b78cd182fa355e0ba1b2e8725fce0ea79b15056bbb233b00ad22eda1e"  # KTH's own 00sequences.txt
ZIP_MAGIC = b"PK\x03\x04"
HEAD_SIZE = 64  # the first bytes of a file that tell a zip or a text from an HTML page
URL_SCHEMES = ("http", "https", "ftp", "file")


class DownloadError(RuntimeError):
    """A file could not be fetched or is not what KTH serves; the message is one line."""


class _Incomplete(Exception):
    """One attempt ended before the whole file arrived (cut, stalled, deadline); the bytes received are
    kept in the ``.part`` file for the next attempt. The message says why."""


def _looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes.lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def fetch(url: str, dest: str | Path, magic: bytes | None = None, max_attempts: int = 5,
          retry_wait: float = 1.0, timeout: float = 60.0, deadline: float = DEFAULT_DEADLINE,
          chunk_size: int = 1 << 16) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if an earlier attempt left one.

    An interrupted transfer (connection cut, no byte for ``timeout`` seconds) is resumed with
    ``Range: bytes=<have>-`` (a server that answers 200 instead of 206 is read again from the
    start), at most ``max_attempts`` times, waiting ``retry_wait`` x the attempt number seconds
    in between, and only until ``deadline`` seconds after the call: then :class:`DownloadError`
    says so and the ``.part`` file is kept for the next call. A server that cannot be reached
    at all, or answers 4xx, is not retried. An HTML answer (Content-Type ``text/html`` or HTML
    first bytes), first bytes other than ``magic`` when given, or a body longer than its
    Content-Length raise :class:`DownloadError` at once and leave no file.
    ``dest`` appears (by rename) only when all the bytes announced by the server arrived.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    give_up_at = time.monotonic() + deadline
    last_problem = "no attempt made"
    for attempt in range(max_attempts):
        if attempt:
            time.sleep(max(0.0, min(retry_wait * attempt, give_up_at - time.monotonic())))
        remaining = give_up_at - time.monotonic()
        if remaining <= 0:
            break
        try:
            _fetch_once(url, part, magic, give_up_at, min(timeout, remaining), chunk_size, dest.name)
        except _Incomplete as e:
            last_problem = str(e)
            continue
        os.replace(part, dest)
        return dest
    have = part.stat().st_size if part.exists() else 0
    kept = (f"{part.name} ({have} bytes) is kept, rerun the same command to resume" if have
            else "rerun the same command to try again")
    if time.monotonic() >= give_up_at:
        raise DownloadError(f"{url}: not complete within its deadline of {deadline:g} s ({last_problem}); "
                            f"{kept}, or give a longer deadline")
    raise DownloadError(f"{url}: gave up after {max_attempts} attempts ({last_problem}); {kept}")


def _fetch_once(url: str, part: Path, magic: bytes | None, give_up_at: float, timeout: float,
                chunk_size: int, name: str) -> None:
    """One request for ``url``: the body goes to the end of ``part`` (resumed with Range) or over it (a
    server that ignores Range). Returns once ``part`` holds the whole file; raises :class:`_Incomplete`
    when retrying may help, :class:`DownloadError` (and removes ``part``) when it cannot."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # our .part is not a prefix of the file: start over
            part.unlink()
            raise _Incomplete("HTTP 416 on resume") from None
        if 400 <= e.code < 500:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the address or pass --base-url "
                                f"with a working mirror (default {DEFAULT_BASE_URL})") from None
        raise _Incomplete(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:  # no connection at all, or no such local file: retrying will not help
        problem = "cannot open" if url.startswith("file:") else "cannot connect"
        check = "the folder" if url.startswith("file:") else "the network"
        raise DownloadError(f"{url}: {problem} ({e.reason}); check {check}, or pass --base-url "
                            f"with a working mirror (default {DEFAULT_BASE_URL})") from None
    except ValueError as e:  # not a URL urllib can open
        raise DownloadError(f"{url}: {e}") from None
    except (http.client.HTTPException, OSError) as e:  # connected, but no answer in time
        raise _Incomplete(f"{type(e).__name__}: {e}") from None
    with response:
        try:
            offset = _body_offset(url, response, have, part)
            _receive(url, response, part, offset, magic, give_up_at, chunk_size, name)
        except DownloadError:
            part.unlink(missing_ok=True)  # a refused file must not be resumed
            raise


def _body_offset(url: str, response, have: int, part: Path) -> int:
    """Where in the file the body of ``response`` starts: ``have`` for a 206 answer to our Range
    request, 0 otherwise. Refuses an HTML answer (:class:`DownloadError`)."""
    content_type = response.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() == "text/html":
        raise DownloadError(f"{url} answered with an HTML page (Content-Type {content_type}), not the file: "
                            f"the address has probably moved; pass --base-url with a working mirror "
                            f"(default {DEFAULT_BASE_URL})")
    status = getattr(response, "status", None)
    if have and status == 206:
        start = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
        if start and int(start[1]) != have:
            part.unlink()
            raise _Incomplete(f"asked for the bytes from {have}, the server sent those from {start[1]}")
        return have
    if have:
        logger.info("%s: the server ignored the Range request (status %s), reading it again from byte 0",
                    url, status)
    return 0


def _read(response, chunk_size: int) -> bytes:
    """The next bytes of ``response`` as soon as any arrive (b'' at its end); :class:`_Incomplete` when
    the connection fails or stays silent for its timeout."""
    try:
        return response.read1(chunk_size)
    except (http.client.HTTPException, OSError) as e:
        raise _Incomplete(f"{type(e).__name__}: {e}") from None


def _check_head(url: str, head: bytes, magic: bytes | None) -> None:
    """Refuse a file whose first bytes are an HTML page or not ``magic`` (:class:`DownloadError`)."""
    if _looks_like_html(head) or (magic is not None and not head.startswith(magic)):
        kind = "an HTML page" if _looks_like_html(head) else f"bytes {head[:8]!r}"
        raise DownloadError(f"{url} starts with {kind}, not the expected file: the address has probably "
                            f"moved; pass --base-url with a working mirror (default {DEFAULT_BASE_URL})")


def _receive(url: str, response, part: Path, offset: int, magic: bytes | None, give_up_at: float,
             chunk_size: int, name: str) -> None:
    """Write the body of ``response`` into ``part`` from byte ``offset`` on, with a progress bar in
    bytes, until the server closes the connection. Every chunk is flushed, so what arrived stays for
    a resume. :class:`_Incomplete` when fewer bytes than the Content-Length arrive or the deadline
    passes; :class:`DownloadError` for more bytes than the Content-Length (the server's length is
    wrong, so no prefix of the body can be trusted) or first bytes that are not the file."""
    length = response.headers.get("Content-Length")
    length = int(length) if length is not None and length.strip().isdigit() else None
    if length is not None and isinstance(response, http.client.HTTPResponse) and not response.chunked:
        response.length = None  # read to the end of the connection (we sent Connection: close) to see extra bytes
    total = None if length is None else offset + length
    head = b""
    if offset:
        with open(part, "rb") as f:
            head = f.read(HEAD_SIZE)
    checked, received = len(head) >= HEAD_SIZE, 0
    with open(part, "ab" if offset else "wb") as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=name, leave=False) as bar:
        while chunk := _read(response, chunk_size):
            received += len(chunk)
            if length is not None and received > length:
                raise DownloadError(f"{url}: the server sent more than the {length} bytes its Content-Length "
                                    f"announced, so the file cannot be trusted; pass --base-url with "
                                    f"another mirror (default {DEFAULT_BASE_URL})")
            if not checked:
                head += chunk[:HEAD_SIZE - len(head)]
                if checked := len(head) >= HEAD_SIZE:
                    _check_head(url, head, magic)
            f.write(chunk)
            f.flush()
            bar.update(len(chunk))
            if time.monotonic() >= give_up_at:
                raise _Incomplete(f"{offset + received} of {total or 'unknown'} bytes when it passed")
    if not checked:
        _check_head(url, head, magic)
    if length is not None and received < length:
        raise _Incomplete(f"connection closed after {offset + received} of {total} bytes")


def check_sequences(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Check that ``path`` is KTH's whole ``00sequences.txt``: it annotates every one of the 599 videos
    (:func:`~src.data.sources.kth.all_video_ids`). Returns its annotations (see
    :func:`~src.data.sources.kth.parse_sequences`); :class:`DownloadError` for a truncated or foreign
    file. A file of the right shape whose bytes differ from KTH's (SHA-256) is only noted."""
    path = Path(path)
    try:
        sequences = parse_sequences(path)
    except ValueError as e:
        raise DownloadError(f"{path}: not a whole KTH {SEQUENCES_FILE} ({e}): truncated or not KTH's") from None
    expected = all_video_ids()
    missing = [v for v in expected if v not in sequences]
    if missing:
        raise DownloadError(f"{path}: annotates {len(expected) - len(missing)} of the {len(expected)} KTH videos "
                            f"(first missing: {missing[0]}, {path.stat().st_size} bytes): truncated or not KTH's")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SEQUENCES_SHA256:
        logger.warning("%s: annotates all %d videos, but its bytes differ from KTH's file (sha256 %s, expected %s)",
                       path, len(expected), digest[:12], SEQUENCES_SHA256[:12])
    return sequences


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
        logger.warning("%s lacks %d of the %d %s videos (e.g. %s)", path.name, len(missing),
                       len(missing) + len(found), action, missing[0])
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


def checked_base_url(base_url: str) -> str:
    """``base_url`` ending in ``/``; ValueError, suggesting ``http://`` or ``file://``, when it is not a URL
    that :func:`urllib.request.urlopen` can open (a folder, ``host:port/path``)."""
    if urllib.parse.urlsplit(base_url).scheme.lower() not in URL_SCHEMES:
        folder = Path(base_url).expanduser().resolve()
        raise ValueError(f"base_url {base_url!r} is not a URL ({', '.join(s + '://' for s in URL_SCHEMES)}): "
                         f"for a web server give e.g. http://{base_url.lstrip('/')}, for a local folder "
                         f"{folder.as_uri()}/")
    return base_url if base_url.endswith("/") else base_url + "/"


def fetch_sequences(base_url: str, root: Path, **fetch_options) -> Path:
    """``root/00sequences.txt``, checked (:func:`check_sequences`); fetched from ``base_url`` (with
    ``fetch_options`` for :func:`fetch`) when absent, or when the one there fails the check (truncated
    by an earlier run). A fetched file that fails the check is removed and :class:`DownloadError` raised."""
    path = root / SEQUENCES_FILE
    if path.is_file():
        try:
            check_sequences(path)
            return path
        except DownloadError as e:
            logger.warning("%s; fetching it again", e)
            path.unlink()
    fetch(base_url + SEQUENCES_FILE, path, **fetch_options)
    try:
        check_sequences(path)
    except DownloadError as e:
        path.unlink()  # a short file must not pass for the whole one on the next run
        raise DownloadError(f"{base_url + SEQUENCES_FILE}: {e}; removed it, pass --base-url with a working "
                            f"mirror (default {DEFAULT_BASE_URL})") from None
    return path


def fetch_action(base_url: str, root: Path, action: str, **fetch_options) -> Path:
    """``root/<action>/``: ``<action>.zip`` fetched from ``base_url`` (with ``fetch_options`` for
    :func:`fetch`), checked, extracted and deleted; a zip that fails its check is deleted too."""
    zip_path = root / f"{action}.zip"
    if not zip_path.is_file():
        fetch(base_url + zip_path.name, zip_path, magic=ZIP_MAGIC, **fetch_options)
    try:
        target = extract(zip_path, action, root)
    except DownloadError:
        zip_path.unlink()  # a bad file must not pass for a good one on the next run
        raise
    zip_path.unlink()
    return target


def download(root: str | Path, base_url: str = DEFAULT_BASE_URL, retry_wait: float = 1.0,
             deadline: float = DEFAULT_DEADLINE) -> Path:
    """Fetch and extract KTH-Actions into ``root`` (see the module docstring); returns ``root``.

    ``retry_wait`` and ``deadline`` (seconds each file may take, all its attempts together) are
    passed to :func:`fetch`. Actions already extracted are skipped. Each file that fails is logged
    in one line and the others still proceed; :class:`DownloadError` naming the failed files is
    raised at the end if any failed. ValueError for a ``base_url`` that is not a URL or a
    ``deadline`` that is not positive, before anything is fetched.
    """
    base_url = checked_base_url(base_url)
    if not deadline > 0:
        raise ValueError(f"deadline must be a positive number of seconds, got {deadline}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".*.tmp"):  # a temporary extraction folder left by a killed run
        shutil.rmtree(stale)
    options = {"retry_wait": retry_wait, "deadline": deadline}
    failures = []
    try:
        fetch_sequences(base_url, root, **options)
    except DownloadError as e:
        failures.append(SEQUENCES_FILE)
        logger.error("%s", e)
    for action in tqdm(ACTIONS, desc="KTH actions", unit="zip"):
        if (root / action).is_dir():
            logger.info("%s: already extracted in %s, skipped", action, root / action)
            continue
        try:
            fetch_action(base_url, root, action, **options)
        except DownloadError as e:
            failures.append(f"{action}.zip")
            logger.error("%s", e)
    if failures:
        raise DownloadError(f"{len(failures)} of {len(ACTIONS) + 1} files failed ({', '.join(failures)}); "
                            f"see the errors above, then rerun the same command to resume")
    return root

"""src/data/download.py against a local HTTP server serving zips built from the real KTH samples."""
from __future__ import annotations

import io
import re
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from src.data.download import DownloadError, check_zip, download, fetch
from src.data.sources.kth import ACTIONS

MOVED_PAGE = (b"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head><title>301 Moved"
              b"</title></head><body><h1>Moved</h1><p>The document has moved.</p></body></html>\n")


@pytest.fixture(scope="module")
def kth_zips(kth_samples) -> dict[str, dict[str, bytes]]:
    """``{action: {video file name: bytes}}``: the real AVIs for handclapping and jogging, and
    for the other actions MP4 samples renamed to KTH AVI names (only names and zips are checked)."""
    real = {p.name: p.read_bytes() for p in kth_samples.glob("person*")}
    small = real["person04_boxing_d1_uncomp.mp4"]
    videos = {a: {f"person01_{a}_d1_uncomp.avi": small, f"person02_{a}_d3_uncomp.avi": small} for a in ACTIONS}
    videos["handclapping"] = {n: b for n, b in real.items() if "handclapping" in n}
    videos["jogging"] = {n: b for n, b in real.items() if "jogging" in n}
    return videos


def make_zip(videos: dict[str, bytes], folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in videos.items():
            zf.writestr(folder + name, data)
    return buffer.getvalue()


class KTHServer:
    """An HTTP server on 127.0.0.1 (port 0) serving ``files`` with Range support and faults:
    ``cut_once[name] = n`` stops the next answer for ``name`` after n bytes, ``cut_always``
    stops every one, ``ignore_range`` answers 200 with the whole file to a Range request,
    ``lie_length[name] = n`` announces a Content-Length of n and sends the whole body,
    ``stall_after[name] = n`` sends n bytes then nothing until the server closes, and
    ``trickle[name] = s`` sends one byte every s seconds. A stalled or trickling answer ends
    at :meth:`close` (or after 10 s), so that no thread outlives its test for long."""

    def __init__(self, files: dict[str, bytes], content_types: dict[str, str]):
        self.files, self.content_types = files, content_types
        self.cut_once: dict[str, int] = {}
        self.cut_always: dict[str, int] = {}
        self.lie_length: dict[str, int] = {}
        self.stall_after: dict[str, int] = {}
        self.trickle: dict[str, float] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        self.released = threading.Event()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name, byte_range = self.path.lstrip("/"), self.headers.get("Range")
                state.requests.append((name, byte_range))
                if name not in state.files:
                    self.send_error(404)
                    return
                body, start = state.files[name], 0
                if byte_range and not state.ignore_range:
                    start = int(byte_range.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", state.content_types.get(name, "application/zip"))
                self.send_header("Content-Length", str(state.lie_length.get(name, len(body) - start)))
                self.end_headers()
                payload = body[start:]
                cut = state.cut_once.pop(name, state.cut_always.get(name))
                try:
                    self.send_body(name, payload if cut is None else payload[:cut])
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

            def send_body(self, name: str, payload: bytes) -> None:
                if name in state.trickle:
                    for i in range(len(payload)):
                        self.wfile.write(payload[i:i + 1])
                        if state.released.wait(state.trickle[name]):
                            return
                elif name in state.stall_after:
                    self.wfile.write(payload[:state.stall_after[name]])
                    state.released.wait(10)
                else:
                    self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def requests_for(self, name: str) -> list[str | None]:
        return [r for n, r in self.requests if n == name]

    def close(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(kth_zips, kth_samples):
    files = {f"{a}.zip": make_zip(v, folder="boxing/" if a == "boxing" else "") for a, v in kth_zips.items()}
    files["00sequences.txt"] = (kth_samples / "00sequences.txt").read_bytes()
    srv = KTHServer(files, {"00sequences.txt": "text/plain"})
    yield srv
    srv.close()


def error_lines(caplog) -> list[str]:
    """The one-line errors that download() logged, one per failed file."""
    return [r.getMessage() for r in caplog.records if r.name == "src.data.download" and r.levelname == "ERROR"]


def assert_extracted(root: Path, action: str, kth_zips) -> None:
    folder = root / action
    assert sorted(p.name for p in folder.iterdir()) == sorted(kth_zips[action])
    for name, data in kth_zips[action].items():
        assert (folder / name).read_bytes() == data, f"{folder / name} differs from the zipped file"


def test_download_extracts_every_action_atomically_and_is_idempotent(server, kth_zips, kth_samples, tmp_path):
    root = tmp_path / "kth_raw"
    assert download(root, base_url=server.base_url, retry_wait=0) == root
    for action in ACTIONS:
        assert_extracted(root, action, kth_zips)
    # nothing left over: no zip, no .part, no temporary folder
    assert sorted(p.name for p in root.iterdir()) == sorted([*ACTIONS, "00sequences.txt"])
    assert (root / "00sequences.txt").read_bytes() == (kth_samples / "00sequences.txt").read_bytes()

    n_requests = len(server.requests)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    download(root, base_url=server.base_url, retry_wait=0)
    assert len(server.requests) == n_requests, "a second run must not fetch anything"
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == mtimes


def test_resumes_an_interrupted_download_with_range(server, kth_zips, tmp_path):
    server.cut_once["jogging.zip"] = 300_000
    download(tmp_path, base_url=server.base_url, retry_wait=0)
    assert server.requests_for("jogging.zip") == [None, "bytes=300000-"]
    assert_extracted(tmp_path, "jogging", kth_zips)


def test_restarts_when_the_server_ignores_range(server, kth_zips, tmp_path):
    server.cut_once["jogging.zip"] = 300_000
    server.ignore_range = True
    download(tmp_path, base_url=server.base_url, retry_wait=0)
    assert server.requests_for("jogging.zip") == [None, "bytes=300000-"]
    assert_extracted(tmp_path, "jogging", kth_zips)  # the file restarted, not appended twice


def test_gives_up_after_bounded_attempts_then_resumes_on_rerun(server, kth_zips, tmp_path, caplog):
    server.cut_always["walking.zip"] = 1000
    with pytest.raises(DownloadError, match=r"1 of 7 files failed \(walking.zip\)") as err:
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    assert "\n" not in str(err.value)
    [line] = error_lines(caplog)
    assert "walking.zip" in line and "5000 of" in line and "rerun the same command to resume" in line
    assert len(server.requests_for("walking.zip")) == 5
    assert not (tmp_path / "walking").exists() and not (tmp_path / "walking.zip").exists()
    assert (tmp_path / "walking.zip.part").stat().st_size == 5000
    for action in ACTIONS[1:]:
        assert_extracted(tmp_path, action, kth_zips)

    del server.cut_always["walking.zip"]
    (tmp_path / ".walking.k3j4.tmp").mkdir()  # as a killed extraction leaves it
    download(tmp_path, base_url=server.base_url, retry_wait=0)
    assert server.requests_for("walking.zip")[-1] == "bytes=5000-"
    assert_extracted(tmp_path, "walking", kth_zips)
    assert not (tmp_path / "walking.zip.part").exists() and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("content_type", ["text/html; charset=iso-8859-1", "application/octet-stream"])
def test_an_html_moved_page_gives_a_clear_error(server, kth_zips, tmp_path, caplog, content_type):
    server.files["walking.zip"] = MOVED_PAGE
    server.content_types["walking.zip"] = content_type
    with pytest.raises(DownloadError, match=r"walking.zip"):
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    [line] = error_lines(caplog)
    assert f"{server.base_url}walking.zip" in line and "HTML" in line
    assert "--base-url" in line
    assert len(server.requests_for("walking.zip")) == 1, "an HTML page is not retried"
    assert not any(p.name.startswith("walking") for p in tmp_path.iterdir())
    assert_extracted(tmp_path, "running", kth_zips)


@pytest.mark.parametrize("damage, message", [("truncate", "not a valid zip"), ("flip_byte", "CRC")])
def test_a_damaged_zip_is_reported_and_not_extracted(server, kth_zips, tmp_path, caplog, damage, message):
    good = server.files["running.zip"]
    if damage == "truncate":
        server.files["running.zip"] = good[: len(good) // 2]
    else:
        middle = len(good) // 2
        server.files["running.zip"] = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1:]
    with pytest.raises(DownloadError, match=r"running.zip"):
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    [line] = error_lines(caplog)
    assert "running.zip" in line and message in line
    assert not any(p.name.startswith(("running", ".running")) for p in tmp_path.iterdir())
    assert_extracted(tmp_path, "walking", kth_zips)


def test_a_missing_file_gives_an_http_error_naming_the_url(server, tmp_path, caplog):
    del server.files["00sequences.txt"]
    with pytest.raises(DownloadError, match=r"00sequences.txt"):
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    [line] = error_lines(caplog)
    assert f"{server.base_url}00sequences.txt: HTTP 404" in line and "--base-url" in line
    assert not (tmp_path / "00sequences.txt").exists()


def test_check_zip_rejects_other_actions_and_empty_zips(kth_zips, tmp_path):
    boxing = tmp_path / "walking.zip"
    boxing.write_bytes(make_zip(kth_zips["boxing"]))
    with pytest.raises(DownloadError, match="another action"):
        check_zip(boxing, "walking")
    empty = tmp_path / "running.zip"
    empty.write_bytes(make_zip({"readme.txt": b"hello"}))
    with pytest.raises(DownloadError, match="holds no running video"):
        check_zip(empty, "running")
    assert [m.filename for m in check_zip(boxing, "boxing")] == list(kth_zips["boxing"])


def test_fetch_checks_magic_bytes_and_writes_nothing_on_mismatch(server, tmp_path):
    dest = tmp_path / "00sequences.txt"
    with pytest.raises(DownloadError, match="not the expected file"):
        fetch(server.base_url + "00sequences.txt", dest, magic=b"PK\x03\x04")
    assert list(tmp_path.iterdir()) == []
    assert fetch(server.base_url + "00sequences.txt", dest) == dest
    assert dest.read_bytes() == server.files["00sequences.txt"]


def test_an_unreachable_server_fails_fast_without_retrying(tmp_path, caplog):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(DownloadError, match=r"7 of 7 files failed"):
        download(tmp_path, base_url=base_url)  # the default retry_wait would take seconds per file
    lines = error_lines(caplog)
    assert len(lines) == 7 and all("cannot connect" in line and "--base-url" in line for line in lines)
    assert f"{base_url}walking.zip: cannot connect" in lines[1]
    assert list(tmp_path.iterdir()) == []


# --- issue 34: lengths that lie, short annotation files, deadlines, stalls, URLs without a scheme ---

def test_a_body_longer_than_its_content_length_is_refused(server, kth_zips, tmp_path, caplog):
    full = server.files["00sequences.txt"]
    server.lie_length["00sequences.txt"] = len(full) // 2  # the prefix alone would pass for the file
    with pytest.raises(DownloadError, match=r"1 of 7 files failed \(00sequences.txt\)"):
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    [line] = error_lines(caplog)
    assert f"{server.base_url}00sequences.txt" in line and f"more than the {len(full) // 2} bytes" in line
    assert len(server.requests_for("00sequences.txt")) == 1, "a server that lies about the length is not retried"
    assert not any(p.name.startswith("00sequences") for p in tmp_path.iterdir())
    for action in ACTIONS:
        assert_extracted(tmp_path, action, kth_zips)


def test_a_short_body_is_incomplete_whatever_the_server_says(server, tmp_path, caplog):
    server.cut_always["00sequences.txt"] = 988
    with pytest.raises(DownloadError, match=r"\(00sequences.txt\)"):
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    [line] = error_lines(caplog)
    assert f"of {len(server.files['00sequences.txt'])} bytes" in line and "00sequences.txt.part" in line
    assert not (tmp_path / "00sequences.txt").exists()
    assert (tmp_path / "00sequences.txt.part").read_bytes() == server.files["00sequences.txt"][:5 * 988]


def test_a_truncated_annotation_file_is_refused_and_fetched_again_on_rerun(server, tmp_path, caplog):
    full = server.files["00sequences.txt"]
    server.files["00sequences.txt"] = full[:full.index(b"\n", 988) + 1]  # an honest Content-Length, whole lines
    with pytest.raises(DownloadError, match=r"1 of 7 files failed \(00sequences.txt\)"):
        download(tmp_path, base_url=server.base_url, retry_wait=0)
    [line] = error_lines(caplog)
    assert "00sequences.txt" in line and "of the 599 KTH videos" in line and "truncated" in line
    assert not any(p.name.startswith("00sequences") for p in tmp_path.iterdir())

    (tmp_path / "00sequences.txt").write_bytes(full[:988])  # as an earlier version of download left it
    server.files["00sequences.txt"] = full
    caplog.clear()
    download(tmp_path, base_url=server.base_url, retry_wait=0)
    assert (tmp_path / "00sequences.txt").read_bytes() == full
    assert any("00sequences.txt" in r.getMessage() and "truncated" in r.getMessage()
               and "fetching it again" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_a_trickling_server_meets_the_deadline_keeps_its_bytes_and_shows_progress(server, tmp_path, caplog,
                                                                                 capsys):
    server.trickle["00sequences.txt"] = 0.2
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"1 of 7 files failed \(00sequences.txt\)"):
        download(tmp_path, base_url=server.base_url, retry_wait=0, deadline=1.5)
    assert time.monotonic() - started < 8  # 1.5 s for the trickle, the zips at once
    [line] = error_lines(caplog)
    assert "00sequences.txt" in line and "deadline of 1.5 s" in line and "is kept" in line
    kept = (tmp_path / "00sequences.txt.part").read_bytes()
    assert 3 <= len(kept) <= 10 and server.files["00sequences.txt"].startswith(kept)
    progress = capsys.readouterr().err
    shown = [int(n) for n in re.findall(r"00sequences.txt: +0%\|[^|]*\| (\d+)\.00/36\.0k", progress)]
    assert shown and 2 <= max(shown) <= len(kept), "the bar shows the bytes as they trickle in"

    del server.trickle["00sequences.txt"]
    download(tmp_path, base_url=server.base_url, retry_wait=0, deadline=1.5)
    assert server.requests_for("00sequences.txt")[-1] == f"bytes={len(kept)}-"
    assert (tmp_path / "00sequences.txt").read_bytes() == server.files["00sequences.txt"]


def test_a_stalling_server_keeps_the_bytes_it_sent_and_the_others_go_on(server, kth_zips, tmp_path, caplog):
    server.stall_after["walking.zip"] = 100
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"1 of 7 files failed \(walking.zip\)"):
        download(tmp_path, base_url=server.base_url, retry_wait=0, deadline=1)
    assert time.monotonic() - started < 8
    [line] = error_lines(caplog)
    assert f"{server.base_url}walking.zip" in line and "deadline of 1 s" in line
    kept = (tmp_path / "walking.zip.part").stat().st_size
    assert kept >= 100 and kept % 100 == 0, "each attempt keeps the 100 bytes it got"
    assert server.requests_for("walking.zip") == [None] + [f"bytes={n}-" for n in range(100, kept, 100)]
    for action in ACTIONS[1:]:
        assert_extracted(tmp_path, action, kth_zips)

    del server.stall_after["walking.zip"]
    download(tmp_path, base_url=server.base_url, retry_wait=0, deadline=1)
    assert server.requests_for("walking.zip")[-1] == f"bytes={kept}-"
    assert_extracted(tmp_path, "walking", kth_zips)


def test_a_base_url_without_a_scheme_fails_at_once_and_suggests_file_urls(server, tmp_path):
    with pytest.raises(ValueError, match=r"base_url 'mirror/kth' is not a URL") as error:
        download(tmp_path / "kth_raw", base_url="mirror/kth")
    assert f"{(Path.cwd() / 'mirror/kth').as_uri()}/" in str(error.value)
    assert "http://mirror/kth" in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "kth_raw").exists() and server.requests == []


def test_a_local_folder_as_a_file_url(server, kth_zips, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, body in server.files.items():
        (mirror / name).write_bytes(body)
    download(tmp_path / "kth_raw", base_url=mirror.as_uri(), retry_wait=0)
    for action in ACTIONS:
        assert_extracted(tmp_path / "kth_raw", action, kth_zips)
    assert server.requests == []


def test_the_cli_prints_one_line_per_failed_file_and_exits_1(server, kth_zips, tmp_path, capsys):
    from src.data.__main__ import main
    server.stall_after["running.zip"] = 100
    server.files["boxing.zip"] = MOVED_PAGE
    with pytest.raises(SystemExit) as exit_:
        main(["download", "--root", str(tmp_path), "--base-url", server.base_url, "--deadline", "1"])
    assert exit_.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line or "error:" in line]
    assert len(lines) == 3
    assert lines[0].startswith("ERROR: ") and "running.zip" in lines[0] and "deadline of 1 s" in lines[0]
    assert lines[1].startswith("ERROR: ") and "boxing.zip" in lines[1] and "HTML" in lines[1]
    assert lines[2] == ("error: 2 of 7 files failed (running.zip, boxing.zip); see the errors above, "
                        "then rerun the same command to resume")
    assert (tmp_path / "running.zip.part").stat().st_size >= 100
    assert_extracted(tmp_path, "walking", kth_zips)

    with pytest.raises(SystemExit) as exit_:
        main(["download", "--root", str(tmp_path), "--base-url", "127.0.0.1:8000/kth"])
    assert exit_.value.code == 1
    assert "file://" in capsys.readouterr().err

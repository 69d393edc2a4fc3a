"""src/training/runlock.py: a run folder's lock is held by one process at a time, names its holder, is re-entrant
within the process, and is taken over when its holder is gone (dead pid, not refreshed, or an old file
that is not a lock)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import src.training.runlock
from src.training.runlock import LOCK_NAME, LockFolderError, RunClaimedError, claimed, holding, read_holder, try_lock

REPO = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look last modified ``seconds`` ago."""
    old = time.time() - seconds
    os.utime(path, (old, old))


@pytest.mark.slow  # dead_pid() runs a python subprocess
def test_a_lock_is_held_once_and_a_dead_holder_is_detected(tmp_path):
    lock = tmp_path / "GRUCell" / LOCK_NAME
    with claimed(lock) as holder:
        assert holder is None and json.loads(lock.read_text())["pid"] == os.getpid()
        assert try_lock(lock)["pid"] == os.getpid()  # held by a live process: not claimed again
    assert not lock.exists()  # released
    assert not lock.parent.exists()  # and the folder the claim made, still empty, removed with it

    lock.parent.mkdir()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "time": 0}))
    assert try_lock(lock) is None  # same host, dead pid: stale, taken over
    assert json.loads(lock.read_text())["pid"] == os.getpid()

    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": 0}))
    assert try_lock(lock)["host"] == "elsewhere"  # another host, recently refreshed: live
    age(lock, src.training.runlock.LOCK_STALE_S + 1)
    assert try_lock(lock) is None  # another host, not refreshed for too long: stale
    assert sorted(p.name for p in lock.parent.iterdir()) == [LOCK_NAME]  # no temp files left


def test_a_claim_is_reentrant_within_the_process_and_released_by_the_outer_block(tmp_path):
    lock = tmp_path / "run" / LOCK_NAME
    with holding(lock):
        with claimed(lock) as inner, holding(tmp_path / "run" / ".." / "run" / LOCK_NAME):  # the same file
            assert inner is None
        assert json.loads(lock.read_text())["pid"] == os.getpid()  # the inner blocks did not release it
    assert not lock.exists()
    assert not src.training.runlock._held


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_an_error_or_ctrl_c_in_the_block_releases_the_claim(tmp_path, error):
    lock = tmp_path / "run" / LOCK_NAME
    with pytest.raises(error), holding(lock):
        raise error
    assert not lock.exists()
    assert try_lock(lock) is None


def test_a_live_holder_is_refused_in_one_line_naming_the_folder_the_process_and_the_file(tmp_path):
    lock = tmp_path / "run" / LOCK_NAME
    lock.parent.mkdir()
    lock.write_text(json.dumps({"host": "host-b", "pid": 4321, "time": time.time()}))
    with pytest.raises(RunClaimedError) as info, holding(lock, "use --name NEW_NAME"):
        pass
    message = str(info.value)
    assert message.startswith(f"{lock.parent}: claimed by process 4321 on host-b since ")
    assert str(lock) in message and message.endswith("; use --name NEW_NAME") and "\n" not in message
    assert info.value.holder["pid"] == 4321 and info.value.lock == lock
    assert json.loads(lock.read_text())["pid"] == 4321  # untouched


@pytest.mark.parametrize("content, why", [("garbage", "not JSON: 'garbage'"), ("", "not JSON: ''"),
                                          ('{"pid": "x"}', "no host and pid"), ("[1, 2]", "no host and pid")])
def test_a_lock_file_that_is_not_a_lock_is_named_and_taken_over_once_old(tmp_path, content, why):
    lock = tmp_path / "run" / LOCK_NAME
    lock.parent.mkdir()
    lock.write_text(content)
    holder = try_lock(lock)
    assert why in holder["unreadable"]
    with pytest.raises(RunClaimedError, match=f"claimed by a lock file that cannot be read as one \\({lock}: "):
        with holding(lock):
            pass
    assert lock.read_text() == content
    age(lock, src.training.runlock.LOCK_STALE_S + 1)
    assert try_lock(lock) is None and read_holder(lock)["pid"] == os.getpid()


def test_a_folder_in_place_of_the_lock_is_refused_however_old(tmp_path):
    lock = tmp_path / "run" / LOCK_NAME
    lock.mkdir(parents=True)
    age(lock, src.training.runlock.LOCK_STALE_S + 1)
    with pytest.raises(RunClaimedError, match="Is a directory"):
        with holding(lock):
            pass
    assert lock.is_dir()


def test_a_folder_that_cannot_be_made_is_one_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    lock = tmp_path / "file" / "models" / "run" / LOCK_NAME
    with pytest.raises(LockFolderError) as info, holding(lock):
        pass
    assert str(info.value).startswith(f"{lock.parent}: cannot make the folder or write {LOCK_NAME} in it (")
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.slow  # a python subprocess holds the lock
def test_a_lock_held_by_another_process_is_refused_and_taken_over_after_kill_9(tmp_path):
    lock = tmp_path / "run" / LOCK_NAME
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from src.training.runlock import claimed\n"
                               f"with claimed({str(lock)!r}):\n    print('held', flush=True); time.sleep(60)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunClaimedError, match=f"claimed by process {holder.pid} on {socket.gethostname()}"):
            with holding(lock):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert read_holder(lock)["pid"] == holder.pid  # kill -9 left its lock behind ...
    with holding(lock):  # ... which is stale: taken over
        assert read_holder(lock)["pid"] == os.getpid()

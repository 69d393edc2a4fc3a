"""One writer per run folder: a lock file that names its holder, claimed atomically.

    with holding(Path("models/GRUCell") / LOCK_NAME):   # RunClaimedError when a live process has it
        ...                                              # train, evaluate: this process alone writes here

    with claimed(lock) as holder:                        # or: holder is None when claimed, else who has it
        if holder is not None:
            print(describe_holder(holder, lock))

The trainer (src/training/trainer.py) claims ``models/<run>/run.lock`` and ``tboard_logs/<run>/run.lock`` for the
whole training; the suite (src/suite.py) claims ``models/<run>/run.lock`` around training and testing a
run and skips a run another process holds. A claim is re-entrant within one process: the trainer called
by the suite's process gets the claim the suite already holds.

The lock file holds ``{"host", "pid", "time"}`` as JSON. It appears complete or not at all: the content
goes to a file of its own, which is then hard-linked to the lock (a link fails when the lock exists, on
NFS too). It is stale, and taken over, when its process has died (same host: the pid is gone) or, from
another host, when it has not been refreshed for LOCK_STALE_S seconds (the holder touches it every
LOCK_REFRESH_S seconds). A lock file that is not such JSON (written by hand, or by something else) is
reported by name; it is taken over once it is older than LOCK_STALE_S. ``kill -9`` leaves the lock
behind; the next claim on the same host takes it over at once.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

LOCK_NAME = "run.lock"  # the lock of a run folder, the trainer's and the suite's
LOCK_STALE_S = 600  # a lock of another host that has not been refreshed for this long belongs to a dead process
LOCK_REFRESH_S = 60  # how often the holder refreshes its lock's modification time

_held: dict[tuple[int, Path], int] = {}  # the locks this process holds: (pid, resolved path) -> nesting depth
_held_guard = threading.Lock()


class RunClaimedError(RuntimeError):
    """Another live process holds the lock (or an unreadable lock file is there); ``lock``, ``holder``."""

    def __init__(self, lock: Path, holder: dict, what_to_do: str):
        self.lock, self.holder = lock, holder
        super().__init__(f"{lock.parent}: {describe_holder(holder, lock)}; {what_to_do}")


class LockFolderError(OSError):
    """The folder of a lock cannot be made, or the lock cannot be written in it (not a folder, read-only,
    disk full); the message names the folder and the reason."""


def describe_holder(holder: dict, lock: Path) -> str:
    """``'claimed by process 123 on host-a since 12:03:04 (lock file models/X/run.lock)'``, or, for a
    lock file that is not a lock, what is wrong with it."""
    if "unreadable" in holder:
        return f"claimed by a lock file that cannot be read as one ({lock}: {holder['unreadable']})"
    since = f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder['time']))}" \
        if isinstance(holder.get("time"), (int, float)) else ""
    return f"claimed by process {holder['pid']} on {holder['host']}{since} (lock file {lock})"


def read_holder(lock: Path) -> dict | None:
    """The holder ``{'host', 'pid', 'time'}`` written in ``lock``; None when there is no lock;
    ``{'host': '?', 'pid': '?', 'unreadable': why}`` when the file is not a lock."""
    try:
        text = lock.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:  # a folder, or another user's file
        return {"host": "?", "pid": "?", "unreadable": e.strerror or type(e).__name__}
    try:
        holder = json.loads(text)
    except ValueError:
        return {"host": "?", "pid": "?", "unreadable": f"not JSON: {text[:40]!r}"}
    if not (isinstance(holder, dict) and isinstance(holder.get("host"), str) and isinstance(holder.get("pid"), int)):
        return {"host": "?", "pid": "?", "unreadable": f"no host and pid: {text[:40]!r}"}
    return holder


def _is_stale(lock: Path, holder: dict) -> bool:
    """Whether the process that wrote ``lock`` is gone: its pid has died (same host), or it has not
    refreshed the lock for LOCK_STALE_S seconds (another host, or an unreadable lock file)."""
    if "unreadable" not in holder and holder["host"] == socket.gethostname():
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    try:
        return lock.is_file() and time.time() - lock.stat().st_mtime > LOCK_STALE_S
    except FileNotFoundError:
        return True


def try_lock(lock: Path) -> dict | None:
    """Claim ``lock`` for this process (not re-entrant: see :func:`claimed`). Returns None when
    claimed, else the holder (``{'host', 'pid', 'time'}``, see :func:`read_holder`) of a live claim;
    a stale lock is taken over.

    Raises:
        LockFolderError: the lock's folder cannot be made, or the lock cannot be written in it.
    """
    me = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    mine = lock.with_name(f".{lock.name}.{me['host']}.{me['pid']}")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        mine.write_text(json.dumps(me))
    except OSError as e:
        with suppress(OSError):  # a half-written file of ours, on a full disk
            mine.unlink(missing_ok=True)
        raise LockFolderError(f"{lock.parent}: cannot make the folder or write {lock.name} in it "
                              f"({e.strerror or e})") from None
    try:
        for _ in range(3):
            try:
                os.link(mine, lock)
                return None
            except FileExistsError:
                holder = read_holder(lock)
                if holder is None:  # released meanwhile
                    continue
                if not _is_stale(lock, holder):
                    return holder
                # a dead holder: move its lock aside (one process wins), check it was the stale one
                grave = lock.with_name(f".{lock.name}.stale.{me['host']}.{me['pid']}")
                try:
                    os.replace(lock, grave)
                except FileNotFoundError:
                    continue
                if read_holder(grave) != holder:  # another process had just taken it over: give it back
                    try:
                        os.link(grave, lock)
                    except FileExistsError:
                        pass
                    grave.unlink(missing_ok=True)
                    return read_holder(lock) or {"host": "?", "pid": "?", "time": None}
                grave.unlink(missing_ok=True)
        return read_holder(lock) or {"host": "?", "pid": "?", "time": None}
    finally:
        mine.unlink(missing_ok=True)


@contextmanager
def claimed(lock: Path):
    """``with claimed(path) as holder:`` holder is None when this process holds the lock for the
    block (refreshed every LOCK_REFRESH_S seconds, removed at the end, on an exception or Ctrl-C
    too, with the folders the claim made when they are still empty), else the live holder (see
    :func:`read_holder`). Re-entrant: inside a block that holds ``lock``, the same process claims it
    again at once (and the outer block releases it).

    Raises:
        LockFolderError: the lock's folder cannot be made, or the lock cannot be written in it.
    """
    lock = Path(lock)
    if lock.parent.is_dir():
        key = (os.getpid(), lock.resolve())
        with _held_guard:
            nested = key in _held
            if nested:
                _held[key] += 1
        if nested:
            try:
                yield None
            finally:
                with _held_guard:
                    _held[key] -= 1
            return
    made = [folder for folder in (lock.parent, *lock.parent.parents) if not folder.exists()]  # deepest first
    holder = try_lock(lock)
    if holder is not None:
        yield holder
        return
    done, key = threading.Event(), None

    def refresh():
        while not done.wait(LOCK_REFRESH_S):
            try:
                os.utime(lock)
            except OSError:
                return

    try:  # from here on, whatever happens (Ctrl-C included) releases the lock
        key = (os.getpid(), lock.resolve())
        with _held_guard:
            _held[key] = 1
        threading.Thread(target=refresh, daemon=True).start()
        yield None
    finally:
        done.set()
        with _held_guard:
            _held.pop(key, None)
        if (read_holder(lock) or {}).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
        for folder in made:  # a run that failed before writing anything leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:  # not empty: the run wrote there
                break


@contextmanager
def holding(lock: Path, what_to_do: str = "wait for it to finish, or delete the lock file if that process is gone"):
    """:func:`claimed`, refusing a lock held by another live process: raises RunClaimedError (the
    folder, the holder, the lock file, then ``what_to_do``) instead of yielding the holder."""
    with claimed(lock) as holder:
        if holder is not None:
            raise RunClaimedError(Path(lock), holder, what_to_do)
        yield

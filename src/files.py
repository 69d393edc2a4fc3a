"""Output files: refused before the work when they cannot be written, then written atomically.

The files that must never be found half-written (checkpoints, results.json, index.json, the
comparison tables, ONNX exports, prediction GIFs, the synthetic twin's videos) are written through
:func:`atomic_write` or :func:`atomic_path`: to a temporary file beside the target,
``.<name>.<host>.<pid>.<random>.tmp`` (this call's alone, so two writers never share one), fsync'd,
then renamed over the target (``os.replace``). An interruption at any moment, ``kill -9``
included, leaves either the old file or the new one, never half of one; on any failure the
temporary file is removed and the error raised as it is, for the caller to turn into its
one-line message::

    with atomic_write("results.json", "w") as f:     # a file object, for writers that take one
        f.write(text)
    with atomic_path("model.onnx") as tmp:           # a path, for writers that take only a path
        program.save(str(tmp))                       # (torch.onnx, PIL, PyAV, matplotlib)

Writers that take a path must not infer the format from its suffix (``.tmp``): give it explicitly
(PIL's ``format="GIF"``, matplotlib's ``format="png"``, PyAV's ``format="avi"``).
"""
from __future__ import annotations

import contextlib
import os
import socket
import uuid
from pathlib import Path


def check_output_file(path: str | Path, key: str | None = None) -> Path:
    """Refuse, before any work, a file path this process cannot write: an existing folder, a path
    under a regular file, or in a folder it may not write in. ``key`` (``'--gif'``) names the
    argument in the message. Returns ``path``; raises ValueError (one line naming the path)."""
    path = Path(path)
    label = f"{key} {path}" if key else str(path)
    if path.is_dir():
        raise ValueError(f"{label}: is a folder; give a file name (in that folder, or elsewhere)")
    existing = next(p for p in (path.parent.absolute(), *path.parent.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{label}: {existing} is a file, not a folder; choose a path in a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{label}: the folder {existing} is not writable; choose another path or fix its "
                         f"permissions")
    return path


def temp_path(path: str | Path) -> Path:
    """A temporary path beside ``path`` that no other call uses: ``.<name>.<host>.<pid>.<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """``with atomic_path(path) as tmp:`` write the file at ``tmp`` (see the module docstring); on
    success it is fsync'd and renamed to ``path``, on any failure (an exception, Ctrl-C) removed.
    ``path``'s folder is made first when missing; an error making it is raised like any other."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb") as written:  # the bytes on disk before the rename makes them the file
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_kwargs):
    """``with atomic_write(path, mode) as f:`` write to ``f``, a file object opened with ``mode``
    (``'wb'`` or ``'w'``, and ``open``'s other keyword arguments) on a temporary file that becomes
    ``path`` when the block succeeds (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f


def remove_temp_files(folder: str | Path, name: str = "*") -> None:
    """Delete the temporary files of ``name`` (a glob: ``'*.pth'``) that writers killed mid-write
    (``kill -9``) left in ``folder``. Only for a folder's one writer: a live writer's would go too."""
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)


def folder_refusal(flag: str, folder: str | Path | None, must_exist: str | None = None) -> str | None:
    """What is wrong with the folder a command-line flag names, in one line, or None. An output folder
    (``must_exist`` None) may be missing (it is made) but not be a file; an input folder (``must_exist``:
    what it holds, e.g. ``'the experiment configs'``) must exist."""
    if folder is None or Path(folder).is_dir():
        return None
    if must_exist is not None:
        return f"{flag} {folder}: {'not a folder' if Path(folder).exists() else 'no such folder'}; give the folder " \
               f"of {must_exist}"
    if Path(folder).exists():
        return f"{flag} {folder}: a file, not a folder; give a folder (it is made if missing)"
    return None

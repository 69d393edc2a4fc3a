"""Stopping a long command cleanly: SIGTERM (a job scheduler's stop, ``docker stop``, ``kill``) ends
``python -m src.train`` and ``python -m src.suite`` as Ctrl-C does.

    with sigterm_as_interrupt():
        train(config)          # SIGTERM raises Terminated (a KeyboardInterrupt) here, in the main thread
    ...
    except KeyboardInterrupt as e:
        sys.exit(exit_code(e))  # 143 after SIGTERM, 1 after Ctrl-C

A run's files survive either: last.pth keeps the last finished epoch (its writes are atomic, src/files.py) and both
run.lock files are released on any exception (src/training/runlock.py).
"""
from __future__ import annotations

import contextlib
import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C is."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """For the block, SIGTERM raises :class:`Terminated` in the main thread; the previous handler afterwards. Where
    no handler can be set (not the main thread: a notebook's worker), the block runs with SIGTERM as it was."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not break the cleanup
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stopped_by(interrupt: KeyboardInterrupt) -> str:
    """How the command was stopped, for its last line: 'terminated (SIGTERM)' or 'interrupted'."""
    return "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The exit code after ``interrupt``: 128 + SIGTERM (143), as a shell reports a process SIGTERM killed; 1 after
    Ctrl-C."""
    return 128 + signal.SIGTERM if isinstance(interrupt, Terminated) else 1

"""Train one experiment.

    python -m src.train --config configs/GRUCell.yaml [--data DIR] [--resume]
                        [--set train.epochs=5 model.hidden_dim=64 ...] [--name GRUCell_seed1]

The command line of :func:`src.training.trainer.train`, which says what a run writes, the
folders it holds, how it resumes and how it runs under DDP. ``--resume`` continues from
``models/<experiment>/last.pth``; on CPU, a resumed run ends with exactly the metrics of an
uninterrupted one. Under ``torchrun --standalone --nproc_per_node=N -m src.train ...`` the same
command trains with DistributedDataParallel, and every message names the rank it comes from.

The trainer's progress lines (its ``logging`` at level INFO) go to stderr, above the progress bars. A bad
config, a run another process trains, a folder or checkpoint that cannot be written, or a loss that turns NaN
ends the command with one ``error:`` line, in this command's words (``--resume``, ``--name``); Ctrl-C (exit 1)
and SIGTERM (a job scheduler's stop, ``docker stop``; exit 143) end it alike, the last finished epoch kept in
last.pth and both run.lock files removed, in one line that says how to resume.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading

from tqdm.contrib.logging import logging_redirect_tqdm

from src.checks import load_checked_config
from src.config import NAME_ARGUMENT
from src.interrupts import exit_code, sigterm_as_interrupt, stopped_by
from src.training import distributed, trainer
from src.training.checkpoint import CheckpointWriteError
from src.training.loop import NonFiniteLossError
from src.training.runlock import LockFolderError, RunClaimedError
from src.training.trainer import EventWriteError, train

FLAGS = {trainer.RESUME: "--resume", trainer.ANOTHER_NAME: "--name NEW_NAME", NAME_ARGUMENT: "--name "}
"""The trainer's words for what to do (an argument of train(), a config key), and this command's flags for them."""


def in_flags(message: str) -> str:
    """``message`` with the trainer's words for what to do said as this command's flags (:data:`FLAGS`)."""
    for words, flag in FLAGS.items():
        message = message.replace(words, flag)
    return message


@contextlib.contextmanager
def progress_on_stderr():
    """For the block: the ``src`` loggers' INFO lines on stderr, bare (the trainer's lines name their run), and
    written above tqdm's progress bars (tqdm's logging_redirect_tqdm)."""
    log = logging.getLogger("src")
    handler, level = logging.StreamHandler(sys.stderr), log.level
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with logging_redirect_tqdm(loggers=[log]):
            yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _quiet_event_writer_thread(args: threading.ExceptHookArgs) -> None:
    """threading.excepthook: tensorboard's event-writer thread prints its failed write (disk full) as a
    traceback, and the trainer gets the same error from ``writer.flush()`` and reports it in one line
    (EventWriteError); every other thread's exception is printed as usual."""
    if not (issubclass(args.exc_type, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
        threading.__excepthook__(args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="experiment YAML, e.g. configs/GRUCell.yaml")
    parser.add_argument("--data", default=None, help="prepared dataset folder (default: the config's data.root)")
    parser.add_argument("--resume", action="store_true", help="continue from models/<experiment>/last.pth")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. --set train.epochs=5 model.hidden_dim=64")
    parser.add_argument("--name", default=None, help="run name (default: the config file's stem), e.g. GRUCell_seed1")
    args = parser.parse_args(argv)
    # under torchrun every message names the rank it comes from, and an unexpected error too is one line
    rank = f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}: " if distributed.launched_by_torchrun() else ""
    # ConfigError: ValueError; the environment's: a claimed run, a folder or checkpoint that cannot be written
    known_errors = (ValueError, NonFiniteLossError, FileNotFoundError, RunClaimedError, LockFolderError,
                    CheckpointWriteError, EventWriteError)
    expected = Exception if rank else known_errors
    threading.excepthook = _quiet_event_writer_thread
    try:
        config = load_checked_config(args.config, args.set, name=args.name, reads_data=True, data_root=args.data)
        with progress_on_stderr(), sigterm_as_interrupt():
            summary = train(config, data_root=args.data, resume=args.resume)
    except expected as e:
        known = isinstance(e, known_errors)
        message = in_flags(str(e)) if known else f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
        sys.exit(f"error: {rank}{message}")
    except KeyboardInterrupt as e:
        print(f"\n{rank}{stopped_by(e)}: last.pth holds the last finished epoch; continue with the same command plus "
              f"--resume", file=sys.stderr)
        sys.exit(exit_code(e))
    if rank and not rank.startswith("rank 0 "):
        return
    chosen = "best val accuracy" if summary["select"] == "best" else \
        "val accuracy of the last epoch (train.select last)"
    print(f"{summary['experiment']}: {chosen} {summary['best_val_accuracy']:.4f} "
          f"(video {summary['best_val_video_accuracy']:.4f}) at epoch {summary['best_epoch']}/{summary['epochs']}; "
          f"{summary['time_per_epoch_s']:.1f} s/epoch, data wait {100 * summary['data_wait_share']:.1f}%, "
          f"{summary['time_to_best_s']:.0f} s to that epoch; checkpoint {summary['best_checkpoint']}")


if __name__ == "__main__":
    main()

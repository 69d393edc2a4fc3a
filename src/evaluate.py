"""Evaluate a trained checkpoint on the test split of its protocol (KTH, course: persons 17-25), once.

    python -m src.evaluate --checkpoint models/GRUCell/best.pth [--data DIR] [--no-early]

or ``evaluate("models/GRUCell/best.pth")`` from a notebook (src/training/evaluation.py). Reports clip
accuracy, video accuracy (logits averaged over ``data.eval_clips_per_video`` evenly spaced clips per
video), per-class accuracy, the confusion matrix, the trainable parameter count, training time per epoch
(from the checkpoint's history), inference latency per clip at batch 1 and throughput at batch 32, and early
recognition (the test accuracy after 1, 2, ... frames of each test clip played as a stream, after 10 %, ...,
100 % of each test subsequence, and each streaming state rule's accuracy on whole test subsequences and on the
validation split's, where a rule is chosen: src/training/early.py; ``--no-early`` skips it); writes them to
``results.json`` beside the checkpoint.

Bad arguments (a missing or foreign ``--checkpoint``, one in the folder of another run, a ``--device`` this machine
lacks, a ``--data`` folder that is not prepared, a folder where results.json cannot be written) get one line before
the test pass starts; a results.json that fails to write at the end gets one line after the table. A checkpoint in a
folder that holds no run's files (a temporary or download folder) is evaluated there.
"""
from __future__ import annotations

import argparse
import logging
import sys

from src.files import check_output_file
from src.training.device import select_device
from src.training.evaluation import DataMismatchError, evaluate, results_path, write_json


def print_results_table(results: dict) -> None:
    """The headline numbers of ``results`` (:func:`src.training.evaluation.evaluate`), one per line."""
    rows = [("experiment", results["experiment"]),
            ("data", f"{results['data_root']}{' (synthetic twin)' if results['synthetic'] else ''}"),
            ("best epoch / val acc", f"{results['best_epoch']} / {results['val_accuracy']:.4f}"),
            ("test clip accuracy", f"{results['clip_accuracy']:.4f}  ({results['num_test_clips']} clips)"),
            ("test video accuracy", f"{results['video_accuracy']:.4f}  ({results['num_test_videos']} videos)"),
            *[(f"  {action}", "–  (no test videos)" if acc is None or acc != acc else f"{acc:.4f}")
              for action, acc in results["per_class_accuracy"].items()],
            ("trainable parameters", f"{results['num_params']:,}"),
            ("epoch wall time (train+val)", f"{results['epoch_time_s']:.1f} s, mean of {results['epochs']} epochs"),
            ("latency (batch 1)", f"{results['latency_ms']:.2f} ms/clip on {results['device']}"),
            ("throughput (batch 32)", f"{results['throughput_clips_per_s']:.0f} clips/s"), *early_rows(results)]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def early_rows(results: dict) -> list[tuple[str, str]]:
    """The table's rows of early recognition (none without its record): the clip accuracy after 1, half and all
    of a clip's steps, the subsequence accuracy after 10 %, 50 % and 100 % of it, and each state rule's accuracy
    over every step of the whole test subsequences and, where recorded, the validation ones."""
    early = results.get("early_recognition")
    if not early:
        return []
    steps, clips = early["steps"], early["clip_accuracy"]
    shown = sorted({0, (len(steps) - 1) // 2, len(steps) - 1})
    percents, subsequences = early["percents"], early["subsequence_accuracy"]
    rows = [("streamed clip acc after t steps", ", ".join(f"t={steps[i]}: {clips[i]:.4f}" for i in shown)),
            ("streamed subsequence acc", ", ".join(f"{p} %: {a:.4f}" for p, a in zip(percents, subsequences)
                                                   if p in (10, 50, 100)) + f"  (rule {early['rule']})")]
    rules = results.get("state_rules") or {}
    for split, record in (("test", rules), ("val", rules.get("validation"))):
        if record and "subsequences" in record:
            rows.append((f"state rules ({split} subsequences)", ", ".join(
                f"{rule}: {scores['per_step']:.4f}" for rule, scores in record["subsequences"].items())
                + "  (every step)"))
    return rows


class _WarningFormatter(logging.Formatter):
    """``warning: <message>``, as the other notes of the command lines read."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="e.g. models/GRUCell/best.pth")
    parser.add_argument("--data", default=None, help="prepared dataset folder (default: the one trained on)")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a device name")
    parser.add_argument("--no-early", action="store_true",
                        help="skip early recognition (the accuracy of the streamed test clips and subsequences)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()  # the library's warnings on stderr
    handler.setFormatter(_WarningFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    path = results_path(args.checkpoint)
    try:
        device = select_device(args.device, key="--device")
        check_output_file(path)
        results = evaluate(args.checkpoint, data_root=args.data, device=device, write=False, early=not args.no_early,
                           check_folder=True)
    except DataMismatchError as e:
        sys.exit(f"error: {e.wording('--data')}")
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        sys.exit(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    print_results_table(results)
    try:
        write_json(results, path)
    except OSError as e:
        sys.exit(f"error: {path}: could not write the results ({e.strerror or e}); they are printed above")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()

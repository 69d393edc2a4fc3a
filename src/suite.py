"""Run every experiment in sequence, resumably, then regenerate the comparison table.

    python -m src.suite [--seeds 5] [--variant-seeds 3] [--only GRUCell OwnLSTM ...] [--set train.epochs=5 ...]
                        [--shard K/N]

Each run trains ``configs/<experiment>.yaml`` (resuming from its ``last.pth``) and then
tests its ``best.pth``, in this process; every experiment runs once per seed, 5 seeds for the
main ones and 3 for the variants by default (run names ``GRUCell``, ``GRUCell_seed1``, ...).
A run whose ``results.json`` exists is reused when it was made on the same data with the same
config (else trained again, and a line says why), an interrupted one resumes from its
``last.pth``, and a run that fails (for example pretrained weights that are not available
offline) is reported and the suite goes on. At the end ``src.compare`` rebuilds the table and
plots.

``--shard K/N`` runs the K-th of N disjoint slices of the planned runs (runs K, K + N,
K + 2N, ... in the order below), so N machines (or N GPUs, one ``CUDA_VISIBLE_DEVICES`` each)
that share ``models/`` run one shard each. Before a run starts its process claims it with
``models/<run>/suite.lock`` (host, pid, time; made atomically with a hard link), so a run is
never started twice, even by overlapping shards; a lock whose process has died (same host) or
that has not been refreshed for ``LOCK_STALE_S`` seconds (other hosts; the holder touches it
every minute) is taken over. Once every shard is done, ``python -m src.compare`` sees every run.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from src.checkpoint import load_checkpoint
from src.compare import compare
from src.config import load_config
from src.data import resolve_data_root
from src.provenance import describe_data, results_mismatch, resume_refusal

MAIN_EXPERIMENTS = ("LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM", "R2Plus1D")  # run with --seeds
LOCK_STALE_S = 600  # a lock of another host that has not been refreshed for this long belongs to a dead process
LOCK_REFRESH_S = 60  # how often the holder refreshes its lock's modification time


def planned_runs(experiments: list[str], seeds: int, variant_seeds: int | None = None) -> list[tuple[str, str, int]]:
    """``(experiment, run_name, seed)`` for every run of the suite: ``seeds`` seeds for the
    MAIN_EXPERIMENTS, ``variant_seeds`` (default: 3, or ``seeds`` when fewer) for the others (the
    scheduler and pretrained variants). In order: every experiment once first, then the further seeds, so
    that a suite cut short still covers every experiment."""
    variant_seeds = min(seeds, 3) if variant_seeds is None else variant_seeds
    return [(name, name if seed == 0 else f"{name}_seed{seed}", seed)
            for seed in range(max(seeds, variant_seeds)) for name in experiments
            if seed < (seeds if name in MAIN_EXPERIMENTS else variant_seeds)]


def parse_shard(text: str) -> tuple[int, int]:
    """``'K/N'`` -> ``(K, N)`` with 1 <= K <= N; ValueError with what to write otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text}: write K/N, e.g. --shard 1/2 on one machine and --shard 2/2 on the other")
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N, e.g. 1/{max(n, 2)}")
    return k, n


def shard(runs: list, k: int, n: int) -> list:
    """The K-th of N disjoint slices of ``runs``: runs K, K + N, K + 2N, ... (1-based)."""
    return runs[k - 1::n]


def _lock_holder(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):  # gone, or not ours to read
        return None


def _is_stale(lock: Path, holder: dict | None) -> bool:
    """Whether the process that wrote ``lock`` is gone: its pid has died (same host), or
    it has not refreshed the lock for LOCK_STALE_S seconds."""
    if holder is not None and holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    try:
        return time.time() - lock.stat().st_mtime > LOCK_STALE_S
    except FileNotFoundError:
        return True


def try_lock(lock: Path) -> dict | None:
    """Claim ``lock`` for this process. Returns None when claimed, else the holder
    (``{'host', 'pid', 'time'}``) of a live claim.

    The lock appears complete or not at all: the content goes to a file of its own, which is
    then hard-linked to ``lock`` (a link fails when ``lock`` exists, on NFS too).
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    mine = lock.with_name(f".{lock.name}.{me['host']}.{me['pid']}")
    mine.write_text(json.dumps(me))
    try:
        for _ in range(3):
            try:
                os.link(mine, lock)
                return None
            except FileExistsError:
                holder = _lock_holder(lock)
                if not _is_stale(lock, holder):
                    return holder or {"host": "?", "pid": "?", "time": None}
                # a dead holder: move its lock aside (one process wins), check it was the stale one
                grave = lock.with_name(f".{lock.name}.stale.{me['host']}.{me['pid']}")
                try:
                    os.replace(lock, grave)
                except FileNotFoundError:
                    continue
                if _lock_holder(grave) != holder:  # another process had just taken it over: give it back
                    try:
                        os.link(grave, lock)
                    except FileExistsError:
                        pass
                    grave.unlink(missing_ok=True)
                    return _lock_holder(lock) or {"host": "?", "pid": "?", "time": None}
                grave.unlink(missing_ok=True)
        return _lock_holder(lock) or {"host": "?", "pid": "?", "time": None}
    finally:
        mine.unlink(missing_ok=True)


@contextmanager
def claimed(lock: Path):
    """``with claimed(path) as holder:`` holder is None when this process holds the lock for
    the block (refreshed every LOCK_REFRESH_S seconds, removed at the end), else the live holder."""
    holder = try_lock(lock)
    if holder is not None:
        yield holder
        return
    done = threading.Event()

    def refresh():
        while not done.wait(LOCK_REFRESH_S):
            try:
                os.utime(lock)
            except OSError:
                return

    threading.Thread(target=refresh, daemon=True).start()
    try:
        yield None
    finally:
        done.set()
        if (_lock_holder(lock) or {}).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)


def run_experiment(experiment: str, run: str | None = None, seed: int | None = None, overrides=(),
                   data_root=None, configs_dir="configs") -> dict:
    """Train (resuming if interrupted) and test one run of ``configs/<experiment>.yaml``;
    return its results (see src.evaluate).

    A saved ``results.json`` is returned as it is only when it was made on the same data
    (fingerprint) with the same config (``log`` and ``data.root`` aside, see
    src/provenance.py); otherwise the run is trained again from scratch, and one line says
    why. The same goes for the ``last.pth`` of an interrupted run before it is resumed."""
    from src.evaluate import evaluate
    from src.train import train

    overrides = [*([f"train.seed={seed}"] if seed is not None else []), *overrides]
    config = load_config(Path(configs_dir) / f"{experiment}.yaml", overrides, name=run)
    run_dir = Path(config["log"]["models_dir"]) / config["experiment"]
    root, synthetic = resolve_data_root(data_root or config["data"]["root"], preset=config["data"]["synthetic_preset"])
    data = describe_data(root, preset=config["data"]["synthetic_preset"] if synthetic else None)
    stale = stale_run(run_dir, config, data)
    if stale is None:
        return json.loads((run_dir / "results.json").read_text())
    if stale:
        print(f"{config['experiment']}: {stale}: training again", flush=True)
        for name in ("results.json", "best.pth", "last.pth"):
            (run_dir / name).unlink(missing_ok=True)
    train(config, data_root=root, resume=True)
    return evaluate(run_dir / "best.pth", data_root=root)


def stale_run(run_dir: Path, config: dict, data: dict) -> str | None:
    """Why the saved state of a run cannot be used for ``config`` on ``data``; None when its
    results.json can be returned as it is; ``''`` when there is nothing (or a last.pth that
    may be resumed) to train from."""
    results_path, last_path = run_dir / "results.json", run_dir / "last.pth"
    if results_path.is_file():
        results = json.loads(results_path.read_text())
        return results_mismatch(results, config, data)
    if last_path.is_file():
        return resume_refusal(load_checkpoint(last_path), config, data, last_path) or ""
    return ""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m src.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="configs")
    parser.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="run only these experiments")
    parser.add_argument("--seeds", type=int, default=5, help=f"seeds for {', '.join(MAIN_EXPERIMENTS)} (default 5)")
    parser.add_argument("--variant-seeds", type=int, default=None,
                        help="seeds for the other experiments, the scheduler and pretrained variants "
                             "(default: 3, or --seeds when fewer)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every run")
    parser.add_argument("--data", default=None, help="prepared data folder for every run (default: config)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--shard", default="1/1", metavar="K/N",
                        help="run the K-th of N disjoint slices of the runs (one per machine or GPU; default 1/1)")
    args = parser.parse_args(argv)
    try:
        k, n = parse_shard(args.shard)
    except ValueError as e:
        parser.error(str(e))

    experiments = sorted(p.stem for p in Path(args.configs).glob("*.yaml") if p.stem != "base")
    if args.only:
        unknown = sorted(set(args.only) - set(experiments))
        if unknown:
            parser.error(f"no config for {', '.join(unknown)} in {args.configs}/ (have: {', '.join(experiments)})")
        experiments = [e for e in experiments if e in args.only]

    failed = []
    runs = shard(planned_runs(experiments, args.seeds, args.variant_seeds), k, n)
    if n > 1:
        print(f"shard {k}/{n}: {len(runs)} run(s): {', '.join(run for _, run, _ in runs)}", flush=True)
    for i, (name, run, seed) in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {run} (seed {seed})", flush=True)
        start = time.time()
        with claimed(Path(args.models_dir) / run / "suite.lock") as holder:
            if holder is not None:
                print(f"[{i}/{len(runs)}] {run}: claimed by process {holder['pid']} on {holder['host']}; skipped",
                      flush=True)
                continue
            try:
                results = run_experiment(name, run, seed, [f"log.models_dir={args.models_dir}", *args.set],
                                         data_root=args.data, configs_dir=args.configs)
            except Exception as error:  # one failed run (e.g. weights not available offline) must not stop the rest
                print(f"[{i}/{len(runs)}] {run}: FAILED: {error}", flush=True)
                failed.append(run)
                continue
        print(f"[{i}/{len(runs)}] {run}: test video accuracy {results['video_accuracy']:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)

    compare(models_dir=args.models_dir, configs_dir=args.configs, data_root=args.data)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun 'python -m src.suite' to retry them")
        sys.exit(1)


if __name__ == "__main__":
    main()

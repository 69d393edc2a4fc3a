"""The statistics and tables over finished runs: what ``python -m src.compare`` writes (src/compare.py is its
command line).

Reads ``<models dir>/<run>/results.json`` (written by ``src.evaluate``), groups the runs of one experiment
(``GRUCell``, ``GRUCell_seed1``, ... -> ``GRUCell``, :func:`experiment_of`), and :func:`compare` writes

- ``results.csv``: one row per run, every measured number (:func:`load_runs`);
- ``results.md``: one row per experiment, mean ± std over its seeds and the 95 % t-interval of its mean test video
  accuracy (:func:`summarize_runs`, :func:`to_markdown`);
- ``comparisons.md``: the paired comparisons of ``configs/suite.yaml`` (src.config.load_plan; differences of test
  accuracy between two experiments, seed by seed, with a 95 % paired t-interval, a verdict, and the power of the
  comparison: the interval's half-width, the smallest difference it could detect and the seeds a ±2-point interval
  needs), see :func:`paired_differences`;
- ``accuracy_vs_params.png``, ``accuracy_vs_epoch_time.png`` (:func:`plot_accuracy_against`);
- when there are runs of K-fold cross-validation (``data.split: kfold``): ``kfold.md``, one row per experiment (and
  seed) over its K fold runs, each video tested exactly once: the test video accuracy pooled over the folds (correct
  videos / all videos) and the mean ± std over folds (:func:`kfold_summary`); a fold set with a fold missing is
  named, not averaged; and ``kfold.csv``, one row per fold run. Those runs are kept out of the tables above;
- for the runs whose results.json records early recognition (``src.evaluate`` since issue 32):
  ``early_recognition.md`` and ``early_recognition.png`` (src/early_analysis.py); nothing when none does.

Where they go: :func:`output_dirs`. One table holds one data source only (the fingerprint of the prepared data, see
src/training/provenance.py, :func:`pick_data_source`); results without provenance (made by older code) are left out,
and a line says so. One data source has one list of classes: the per-class columns are its class names (each run's
``per_class_accuracy``; a class without test videos has none: null in results.json, NaN, '–' in results.md), and
the tables' header says the split the runs were tested on (their provenance's ``split``: protocol, fold, test
groups). Progress and what is left out go to ``logging``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from src.config import SuitePlan, load_plan
from src.early_analysis import write_early
from src.files import atomic_write
from src.training.provenance import comparable_config, data_label, describe_data, in_another_runs_folder

logger = logging.getLogger(__name__)

# results.json key -> table column
COLUMNS = {
    "experiment": "experiment",
    "run": "run",
    "seed": "seed",
    "num_params": "params",
    "epoch_time_s": "epoch s (train+val)",
    "latency_ms": "latency ms (b=1)",
    "throughput_clips_per_s": "clips/s (b=32)",
    "val_accuracy": "val acc",
    "clip_accuracy": "test clip acc",
    "video_accuracy": "test video acc",
}
ACCURACY_COLUMNS = ["val acc", "test clip acc", "test video acc"]  # then one '<class> acc' per class of the data
INFO_COLUMNS = ["run", "seed", "data", "fingerprint", "split", "device", "train device", "amp"]

CONFIDENCE = 0.95  # of every interval compare reports
VAL_TIE = 1e-6  # mean validation accuracies this close tie for 'best <group>' (float32 rounding of equal counts)
POWER = 0.8  # of the paired t-test behind 'smallest detectable difference' (at alpha = 1 - CONFIDENCE)
TARGET_HALF_WIDTH = 0.02  # 2 percentage points: the half-width 'seeds needed' aims at
RECORD_MODELS_DIR = "models"  # the runs whose tables and figures are the committed results/ and imgs/
# the columns of the runs of K-fold cross-validation (fold_columns), kept out of the tables over seeds
FOLD_COLUMNS = ["fold", "folds", "test videos", "test video ids"]


def output_dirs(models_dir: str | Path = RECORD_MODELS_DIR,
                record_models_dir: str | Path = RECORD_MODELS_DIR) -> dict[str, Path | None]:
    """Where the outputs made from the runs under ``models_dir`` go: ``{'out': tables,
    'imgs': figures, 'tboard': TensorBoard events (one folder per run)}``.

    For ``record_models_dir`` (default ``models``, relative to the working folder): ``results/`` and ``imgs/``, the
    repository's folders of record, and None for the events (the config's ``log.tboard_dir``,
    ``tboard_logs/``). For any other folder DIR: DIR itself for the tables and figures
    (``DIR/results.md``, ``DIR/comparisons.md``, ``DIR/results.csv``, ``DIR/accuracy_vs_*.png``) and
    ``DIR/tboard_logs/<run>/`` for the events, so that a trial writes nothing outside the folder it
    was given (none of them is a ``DIR/<run>/results.json``). ``record_models_dir``: the runs' folder whose
    outputs are those of record (the recipe study's is ``models/recipe``)."""
    models_dir = Path(models_dir)
    if models_dir.resolve() == Path(record_models_dir).resolve():
        return {"out": Path("results"), "imgs": Path("imgs"), "tboard": None}
    return {"out": models_dir, "imgs": models_dir, "tboard": models_dir / "tboard_logs"}


def experiment_of(run: str) -> str:
    """``'GRUCell_seed2' -> 'GRUCell'``, ``'GRUCell_fold3_seed1' -> 'GRUCell'``: the runs of one config with
    other seeds (and folds)."""
    return re.sub(r"(_fold\d+)?(_seed\d+)?$", "", run)


def fold_columns(results: dict) -> dict:
    """The K-fold columns of a run's row (:data:`FOLD_COLUMNS`): ``fold`` (k) and ``folds`` (K) when its config
    says ``data.split: kfold``, else None; ``test videos`` (how many it tested); ``test video ids`` (sorted, from
    its predictions) for a K-fold run that has them, else None."""
    data = (results.get("config") or {}).get("data") or {}
    kfold = data.get("split") == "kfold"
    ids = tuple(sorted({p["video_id"] for p in results.get("predictions") or []})) if kfold else ()
    return {"fold": data.get("fold") if kfold else None, "folds": data.get("folds") if kfold else None,
            "test videos": results.get("num_test_videos"), "test video ids": ids or None}


def class_columns(columns) -> list[str]:
    """The per-class test accuracy columns (``'<class name> acc'``) among ``columns``, in order."""
    return [column for column in columns if column.endswith(" acc") and column not in ACCURACY_COLUMNS]


def groups_text(groups: list) -> str:
    """``'17-25'``, ``'2, 3, 5-10, 22'`` (runs of three or more integers as ranges), ``'g01, g02'``; past 12
    items, their count."""
    items = [str(group) for group in groups]
    if all(isinstance(group, int) for group in groups):
        ranges = []
        for group in sorted(groups):
            if ranges and group == ranges[-1][1] + 1:
                ranges[-1][1] = group
            else:
                ranges.append([group, group])
        items = [item for low, high in ranges
                 for item in ([f"{low}-{high}"] if high - low >= 2 else map(str, range(low, high + 1)))]
    return ", ".join(items) if len(items) <= 12 else f"{len(groups)} in all"


def split_label(provenance: dict) -> str:
    """The split a run was tested on, from its results' provenance: ``'course split, test persons
    17-25, model selection on validation persons'``, ``'given split fold 1, test groups 8, 9'``."""
    split = provenance["split"]
    kind = "persons" if provenance.get("persons") else "groups"  # KTH's provenance also names the persons
    fold = f" fold {split['fold']}" if split.get("fold") is not None else ""
    test = (split.get("groups") or {}).get("test")
    tested = f", test {kind} {groups_text(test)}" if test else ""
    return f"{split['protocol']} split{fold}{tested}, model selection on validation {kind}"


class RunsError(ValueError):
    """A folder of runs that cannot make one table: a results.json in the folder of another run, or one run twice.
    One line that names the files and what to do."""


def misplaced_results(path: Path, results: dict) -> str | None:
    """Why the results.json at ``path`` (``<models dir>/<folder>/results.json``) is not its folder's run, or None:
    it records another run's name (``experiment``), e.g. a copy of another run's results
    (:func:`src.training.provenance.in_another_runs_folder`, the rule src.evaluate also follows)."""
    run = results.get("experiment", path.parent.name)
    refusal = in_another_runs_folder(path, run, "results")
    return refusal and f"{refusal}; move it to {path.parent.parent / run}/ (or delete it), then compare again"


def run_identity(results: dict) -> tuple:
    """What makes a run the one it is, from a results.json with provenance: its experiment (:func:`experiment_of`
    its name), its seed, the fingerprint of the data it was tested on, and the digest of its config (what changes a
    result: src.training.provenance.comparable_config, so the run's name, ``log`` and ``data.root`` aside). Two
    results of one identity are the same run counted twice."""
    config = json.dumps(comparable_config(results.get("config") or {}), sort_keys=True, default=str)
    return (experiment_of(results.get("experiment", "")), results.get("seed"),
            results["provenance"]["data"]["fingerprint"], hashlib.sha1(config.encode()).hexdigest())


def run_row(run: str, results: dict, provenance: dict) -> dict:
    """The row of :func:`load_runs` of one run: its results.json ``results`` with their ``provenance``."""
    row = {"run": run, "experiment": experiment_of(run)}
    row.update({col: results.get(key) for key, col in COLUMNS.items() if key not in ("run", "experiment")})
    for name, acc in (results.get("per_class_accuracy") or {}).items():  # in the order of its classes
        row[f"{name} acc"] = np.nan if acc is None else acc  # null: a class without test videos, no accuracy
    row.update({"data": data_label(provenance["data"]), "fingerprint": provenance["data"]["fingerprint"],
                "split": split_label(provenance),
                "device": results.get("device"), "train device": provenance.get("train_device"),
                "amp": results.get("amp")})
    row.update(fold_columns(results))
    return row


def load_runs(models_dir: str | Path = RECORD_MODELS_DIR) -> tuple[pd.DataFrame, list[str]]:
    """One row per ``models/<run>/results.json`` that records its provenance (its data and split), with the
    columns of :data:`COLUMNS`, one per-class test accuracy column per class of its data
    (``'<class name> acc'``; NaN for a class without test videos), the data (``data``: its label,
    ``fingerprint``), the split it was tested on (:func:`split_label`), devices and AMP, and the K-fold columns of
    :func:`fold_columns` (``fold`` is None outside K-fold cross-validation); ``runs.attrs['classes']``:
    ``{fingerprint: its class names}``. Returns ``(runs, names of the runs left out for lack of provenance)``:
    results of older code, which recorded no data or no split.

    Raises :class:`RunsError` for a results.json in the folder of another run (:func:`misplaced_results`) and for
    two results.json of one run (:func:`run_identity`), which would count one seed twice."""
    rows, unknown, seen, classes = [], [], {}, {}
    for path in sorted(Path(models_dir).glob("*/results.json")):
        results = json.loads(path.read_text())
        refusal = misplaced_results(path, results)
        if refusal:
            raise RunsError(refusal)
        provenance = results.get("provenance")
        if not provenance or not provenance.get("data") or not (provenance.get("split") or {}).get("protocol"):
            unknown.append(path.parent.name)
            continue
        identity = run_identity(results)
        if identity in seen:
            experiment, seed = identity[:2]
            raise RunsError(f"{seen[identity]} and {path}: the same run twice (experiment {experiment}, seed {seed}, "
                            "the same data and config), which would count its seed twice; delete one of the two "
                            "folders, then compare again")
        seen[identity] = path
        fingerprint = provenance["data"]["fingerprint"]
        classes[fingerprint] = list(dict.fromkeys([*classes.get(fingerprint, []),
                                                   *(results.get("per_class_accuracy") or {})]))
        rows.append(run_row(path.parent.name, results, provenance))
    runs = pd.DataFrame(rows)
    runs.attrs["classes"] = classes
    return runs, unknown


def t_half_width(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half the width of the Student-t confidence interval of a mean of ``n`` values with sample
    std ``std``: t_{(1+confidence)/2, n-1} · std / √n; NaN for n < 2."""
    if n < 2:
        return float("nan")
    return float(stats.t.ppf((1 + confidence) / 2, n - 1) * std / np.sqrt(n))


def smallest_detectable_difference(std: float, n: int, confidence: float = CONFIDENCE,
                                   power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t-test at alpha = 1 - confidence
    finds with probability ``power`` from ``n`` pairs whose differences have std ``std``:
    (t_{1-alpha/2, n-1} + t_{power, n-1}) · std / √n (the usual approximation of the noncentral t);
    NaN for n < 2."""
    if n < 2:
        return float("nan")
    return float((stats.t.ppf((1 + confidence) / 2, n - 1) + stats.t.ppf(power, n - 1)) * std / np.sqrt(n))


def seeds_for_half_width(std: float, half_width: float = TARGET_HALF_WIDTH, confidence: float = CONFIDENCE) -> float:
    """The smallest n >= 2 with t_{(1+confidence)/2, n-1} · std / √n <= ``half_width``: the
    seeds a confidence interval that narrow needs when the values' std is ``std``; NaN when
    ``std`` is NaN."""
    if np.isnan(std):
        return float("nan")
    # t > z, so the normal approximation's n is a lower bound; step up from it
    n = max(2, int(np.ceil((stats.norm.ppf((1 + confidence) / 2) * std / half_width) ** 2)))
    while t_half_width(std, n, confidence) > half_width:
        n += 1
    return n


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Student-t confidence interval ``(low, high)`` of the mean of ``values`` (NaNs dropped), by
    ``scipy.stats.t.interval``: mean ± t_{(1+confidence)/2, n-1} · s / √n with the sample std s (ddof=1), see
    :func:`t_half_width`. ``(nan, nan)`` for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    mean, sem = values.mean(), stats.sem(values)
    if sem == 0:  # equal values: the interval is their value (scipy answers NaN for a zero scale)
        return float(mean), float(mean)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def summarize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: mean and sample std (ddof=1; NaN for a single run) of every
    numeric column over its runs, the 95 % t-interval of the mean test video accuracy
    (``test video acc ci low`` / ``ci high``; NaN for a single run), ordered by mean
    validation accuracy (never by test)."""
    numeric = runs.drop(columns=INFO_COLUMNS, errors="ignore")
    grouped = numeric.groupby("experiment", sort=True)
    summary = grouped.mean(numeric_only=True)
    summary.columns = [f"{c} mean" for c in summary.columns]
    std = grouped.std(numeric_only=True, ddof=1)
    std.columns = [f"{c} std" for c in std.columns]
    summary = summary.join(std)
    intervals = grouped["test video acc"].apply(t_interval)
    summary["test video acc ci low"] = intervals.str[0]
    summary["test video acc ci high"] = intervals.str[1]
    summary.insert(0, "seeds", grouped.size())
    return summary.sort_values("val acc mean", ascending=False, kind="stable")


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table with ``mean ± std`` cells (accuracies in %)."""
    table = pd.DataFrame(index=summary.index)
    table["seeds"] = summary["seeds"]
    per_class = class_columns(column.removesuffix(" mean") for column in summary.columns if column.endswith(" mean"))
    for col in ["params", "epoch s (train+val)", "latency ms (b=1)", "clips/s (b=32)"] + ACCURACY_COLUMNS + per_class:
        if f"{col} mean" not in summary:
            continue
        mean, std = summary[f"{col} mean"], summary[f"{col} std"]
        scale, fmt = (100, "{:.1f}") if col.endswith(" acc") else (1, "{:,.0f}" if col == "params" else "{:.2f}")
        cells = []
        for m, s, n in zip(mean, std, summary["seeds"]):
            if np.isnan(m):  # a class without test videos in these runs: no accuracy
                cells.append("–")
                continue
            cell = fmt.format(m * scale)
            if n > 1 and col != "params" and not np.isnan(s):  # NaN: one seed of them has a value
                cell += " ± " + fmt.format(s * scale)
            cells.append(cell)
        table[col.replace("acc", "acc %")] = cells
        if col == "test video acc" and "test video acc ci low" in summary:
            table[f"test video acc % {CONFIDENCE:.0%} CI"] = [
                "–" if np.isnan(low) else f"[{100 * low:.1f}, {100 * high:.1f}]"
                for low, high in zip(summary["test video acc ci low"], summary["test video acc ci high"])]
    return table.to_markdown()


def table_notes(summary: pd.DataFrame) -> str:
    """What the numbers under the table are."""
    seeds = sorted(set(summary["seeds"]))
    per_class = [f"{name} mean" for name in class_columns(column.removesuffix(" mean") for column in summary.columns
                                                          if column.endswith(" mean"))]
    no_videos = bool(summary[per_class].isna().any(axis=None))
    return ("± is the sample standard deviation (ddof=1) over the n runs of an experiment (n = 'seeds': "
            f"{', '.join(map(str, seeds))}; seeds 0..n-1); a single run has none. "
            f"'test video acc % {CONFIDENCE:.0%} CI' is the {CONFIDENCE:.0%} t-interval over seeds of the mean "
            f"test video accuracy, mean ± t({(1 + CONFIDENCE) / 2:g}, n-1)·s/√n (Student t, n-1 degrees of "
            "freedom, n = 'seeds'); '–' for a single run. Rows are ordered by mean validation accuracy. "
            "'epoch s (train+val)' is the mean wall time of a training epoch, validation included, over all "
            "epochs of each run; latency and throughput are measured on random clips. Paired comparisons "
            "between experiments: comparisons.md." + (
                " '–' in a class's column: the test split of those runs has no video of that class, so no accuracy "
                "(not 0 %); a mean over seeds counts the seeds that have one." if no_videos else ""))


def best_of(runs: pd.DataFrame, candidates: list[str]) -> list[str]:
    """The experiments of ``candidates`` with the highest mean validation accuracy over their runs (never chosen
    on test), in ``candidates``' order: one, or several that tie (means within :data:`VAL_TIE`, since accuracies
    are counts of clips stored in float32, so equal counts differ only by rounding); empty if none has runs."""
    among = runs[runs["experiment"].isin(candidates)]
    if among.empty:
        return []
    means = among.groupby("experiment")["val acc"].mean()
    return [name for name in candidates if name in means.index and means[name] >= means.max() - VAL_TIE]


def comparison_pairs(runs: pd.DataFrame, plan: SuitePlan) -> tuple[list[tuple[str, str, str]], list[str], dict]:
    """``plan.comparisons`` with each ``'best <group>'`` resolved on validation (:func:`best_of`): ``([(A, B, how B
    was chosen)], skipped, {'best <group>': its candidates})``, one pair per experiment that ties for the best, and
    one skipped line for a 'best <group>' none of whose candidates has runs."""
    pairs, skipped, chosen_among = [], [], {}
    for a, b in plan.comparisons:
        candidates = plan.candidates(b)
        if candidates is None:
            pairs.append((a, b, ""))
            continue
        chosen_among[b] = candidates
        best = best_of(runs, candidates)
        if not best:
            skipped.append(f"{a} vs {b}: no runs of {', '.join(candidates)}")
        tie = f", a {len(best)}-way tie" if len(best) > 1 else ""
        pairs += [(a, name, f"{b} by val acc{tie}") for name in best]
    return pairs, skipped, chosen_among


def paired_statistics(diff: np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """What :func:`paired_differences` says of the differences ``diff`` (one per paired seed, fractions): ``diff
    mean``, ``diff std``, ``diff ci low``, ``diff ci high``, ``half width``, ``detectable diff``, ``seeds for 2 pp``
    (NaN where n is too small)."""
    low, high = t_interval(diff, confidence)
    std = diff.std(ddof=1) if len(diff) > 1 else float("nan")
    return {"diff mean": diff.mean() if len(diff) else float("nan"), "diff std": std,
            "diff ci low": low, "diff ci high": high,
            "half width": t_half_width(std, len(diff), confidence),
            "detectable diff": smallest_detectable_difference(std, len(diff), confidence),
            "seeds for 2 pp": seeds_for_half_width(std, TARGET_HALF_WIDTH, confidence)}


def verdict(a: str, b: str, n: int, low: float, high: float) -> str:
    """The verdict of a paired comparison of A and B over ``n`` seeds whose interval is ``[low, high]``."""
    if n < 2:
        return f"needs ≥ 2 paired seeds (have {n})"
    if low <= 0 <= high:
        return "no measurable difference"
    return f"{a} higher" if low > 0 else f"{b} higher"


def paired_comparison(runs: pd.DataFrame, a: str, b: str, confidence: float = CONFIDENCE) -> dict:
    """One row of :func:`paired_differences`: the runs of ``a`` and ``b`` paired by seed (only the seeds both
    have), :func:`paired_statistics` of their test video and clip accuracy differences A − B, and the verdict."""
    by_seed = {name: runs[runs["experiment"] == name].groupby("seed")[["test video acc", "test clip acc"]].mean()
               for name in (a, b)}
    seeds = sorted(set(by_seed[a].index) & set(by_seed[b].index))
    row = {"n": len(seeds), "seeds": ", ".join(str(int(seed)) for seed in seeds)}
    for kind in ("video", "clip"):
        column = f"test {kind} acc"
        diff = (by_seed[a].loc[seeds, column] - by_seed[b].loc[seeds, column]).to_numpy(dtype=float)
        row.update({f"{kind} {stat}": value for stat, value in paired_statistics(diff, confidence).items()})
    row["verdict"] = verdict(a, b, len(seeds), row["video diff ci low"], row["video diff ci high"])
    return row


def paired_differences(runs: pd.DataFrame, plan: SuitePlan | None = None,
                       confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Seed-by-seed comparisons of two experiments' test accuracy.

    ``runs`` has one row per run with the columns ``experiment``, ``seed``, ``val acc``,
    ``test video acc`` and ``test clip acc``: :func:`load_runs`' frame or
    ``pd.read_csv("results/results.csv")`` (one data source). For each ``(A, B)`` of ``plan.comparisons``
    (default: the repository's configs/suite.yaml; ``'best <group>'`` as B stands for :func:`best_of` the
    group's main experiments), the runs are paired by seed (only seeds both experiments have) and the
    differences A − B (fractions, not %) are summarized. One row per pair, columns:

    - ``A``, ``B``: the experiments; ``B chosen as``: "best recurrent by val acc" (for 'best recurrent'; one row for
      each experiment that ties for it, "best recurrent by val acc, a 3-way tie") or "";
    - ``n``: paired seeds; ``seeds``: them, e.g. "0, 1, 2";
    - ``video diff mean``, ``video diff std`` (ddof=1), ``video diff ci low``, ``video diff ci high``
      (the ``confidence`` paired t-interval, n-1 degrees of freedom; NaN for n < 2), and the
      same four for ``clip``;
    - ``video half width``: half the width of that interval (:func:`t_half_width`);
      ``video detectable diff``: the smallest true difference a two-sided paired t-test at
      alpha = 1 - confidence detects with power :data:`POWER` at this n
      (:func:`smallest_detectable_difference`); ``video seeds for 2 pp``: the paired seeds that
      would bring the half-width to :data:`TARGET_HALF_WIDTH` at the observed std
      (:func:`seeds_for_half_width`); NaN for n < 2; the same three for ``clip``;
    - ``verdict`` (on test video accuracy): "no measurable difference" where the interval covers
      0, else "<A> higher" or "<B> higher"; "needs ≥ 2 paired seeds (have n)" for n < 2.

    Pairs with an experiment without runs are left out; ``result.attrs["skipped"]`` holds one
    line for each, ``result.attrs["best_of"]`` ``{'best <group>': its candidates}`` for the notes.
    """
    plan = load_plan() if plan is None else plan
    done = set(runs["experiment"])
    pairs, skipped, chosen_among = comparison_pairs(runs, plan)
    rows = []
    for a, b, chosen in pairs:
        absent = [name for name in (a, b) if name not in done]
        if absent:
            skipped.append(f"{a} vs {b}: no runs of {' and '.join(absent)}")
            continue
        rows.append({"A": a, "B": b, "B chosen as": chosen, **paired_comparison(runs, a, b, confidence)})
    stats_columns = ("diff mean", "diff std", "diff ci low", "diff ci high", "half width", "detectable diff",
                     "seeds for 2 pp")
    columns = (["A", "B", "B chosen as", "n", "seeds"] + [f"{kind} {stat}" for kind in ("video", "clip")
                                                          for stat in stats_columns] + ["verdict"])
    result = pd.DataFrame(rows, columns=columns)
    result.attrs["skipped"] = skipped
    result.attrs["best_of"] = chosen_among
    return result


def comparisons_markdown(comparisons: pd.DataFrame, confidence: float = CONFIDENCE) -> str:
    """:func:`paired_differences`' frame as Markdown: a table (differences in percentage
    points, ``mean ± std`` and ``[low, high]``; "–" where there is no interval; then the power
    of the test video comparison: the interval's half-width, the smallest detectable difference
    and the seeds a ±2-point interval needs), the notes and one line per skipped pair."""
    def points(value, signed=True):
        return "–" if np.isnan(value) else f"{100 * value:{'+' if signed else ''}.1f}"

    table = pd.DataFrame({
        "A": comparisons["A"],
        "B": [f"{b} ({chosen})" if chosen else b for b, chosen in zip(comparisons["B"], comparisons["B chosen as"])],
        "paired seeds n": comparisons["n"],
    })
    for kind in ("video", "clip"):
        table[f"test {kind} acc A − B (pp)"] = [
            points(m) + ("" if np.isnan(s) else f" ± {points(s, signed=False)}")
            for m, s in zip(comparisons[f"{kind} diff mean"], comparisons[f"{kind} diff std"])]
        table[f"{kind} {confidence:.0%} CI (pp)"] = [
            "–" if np.isnan(low) else f"[{points(low)}, {points(high)}]"
            for low, high in zip(comparisons[f"{kind} diff ci low"], comparisons[f"{kind} diff ci high"])]
    table["verdict (test video acc)"] = comparisons["verdict"]
    target = f"±{100 * TARGET_HALF_WIDTH:g} pp"
    table["video CI half-width (pp)"] = [points(value, signed=False) for value in comparisons["video half width"]]
    table["smallest detectable video diff (pp)"] = [points(value, signed=False)
                                                    for value in comparisons["video detectable diff"]]
    table[f"seeds for video CI {target}"] = ["–" if np.isnan(n) else str(int(n))
                                             for n in comparisons["video seeds for 2 pp"]]
    # disable_numparse: keep the signs of "+1.2" and the 1-decimal cells as written
    text = (table.to_markdown(index=False, disable_numparse=True) if len(table)
            else "No pair has runs of both experiments.")
    text += ("\n\nA − B is the difference of test accuracy between the runs of A and B with the same seed (only "
             "seeds both experiments ran), in percentage points: mean ± sample std (ddof=1) over the n paired seeds, "
             f"and the {confidence:.0%} paired t-interval of the mean difference, mean ± t({(1 + confidence) / 2:g}, "
             "n-1)·s/√n (Student t, n-1 degrees of freedom). The verdict reads the test video accuracy interval: "
             "'no measurable difference' where it covers 0.")
    for name, candidates in comparisons.attrs.get("best_of", {}).items():
        text += (f" The {name} experiment is the one of {', '.join(candidates)} with the highest mean validation "
                 "accuracy, never chosen on test; where several tie (equal numbers of validation clips right), A is "
                 "compared with each of them.")
    text += ("\n\nThe last three columns say what the comparison of test video accuracy could see (s: the sample "
             "std of its paired differences, n: its paired seeds; '–' for n < 2). 'video CI half-width' is "
             f"t({(1 + confidence) / 2:g}, n-1)·s/√n, half the width of its interval. 'smallest detectable video "
             f"diff' is the true difference a two-sided paired t-test at alpha = {1 - confidence:.2g} would find "
             f"with power {POWER:g} at this n: (t({(1 + confidence) / 2:g}, n-1) + t({POWER:g}, n-1))·s/√n (the usual "
             "approximation of the noncentral t); smaller true differences are likely to read 'no measurable "
             f"difference'. 'seeds for video CI {target}' is the smallest n with t({(1 + confidence) / 2:g}, "
             f"n-1)·s/√n ≤ {100 * TARGET_HALF_WIDTH:g} points, with the observed s.")
    for line in comparisons.attrs.get("skipped", []):
        text += f"\n\nSkipped {line}."
    return text


def plot_accuracy_against(summary: pd.DataFrame, x: str, path: str | Path, xlabel: str, logx: bool = False):
    """Scatter of test video accuracy (mean ± std over seeds) against ``x``; saves a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.errorbar(summary[f"{x} mean"], 100 * summary["test video acc mean"],
                yerr=100 * summary["test video acc std"].fillna(0), fmt="o", capsize=3)
    for name, row in summary.iterrows():
        ax.annotate(name, (row[f"{x} mean"], 100 * row["test video acc mean"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test video accuracy (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pick_data_source(runs: pd.DataFrame, data_root=None) -> str:
    """The fingerprint of the data one table is made of: ``data_root``'s when given, else
    the one most runs were made on."""
    if data_root is not None:
        return describe_data(data_root)["fingerprint"]
    return runs["fingerprint"].value_counts().index[0]


def kfold_summary(fold_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per fold set: the runs of K-fold cross-validation (:func:`load_runs`' rows with a ``fold``) of one
    experiment and seed with the same ``folds`` K.

    A complete set (every fold 1..K tested by exactly one run, no video tested in two of them) gets
    ``test videos`` (over its K runs, each video once), ``correct test videos``, ``pooled test video acc``
    (correct / all) and, over its K runs, ``<column> mean`` and ``<column> std`` (ddof=1) for ``val acc``,
    ``test clip acc`` and ``test video acc``; ``problem`` is "". Any other set gets NaN there, and ``problem``
    says what is wrong (``'fold 3, 5 missing'``, ``'fold 2 tested by 2 runs (...)'``, ``'4 video(s) tested in
    more than one fold (...)'``). Further columns: ``experiment``, ``seed``, ``folds``, ``runs`` (their names).
    Complete sets first, by mean validation accuracy (never by test), then the others by name."""
    stats_columns = ["val acc", "test clip acc", "test video acc"]
    rows = []
    for (experiment, seed, folds), group in fold_runs.groupby(["experiment", "seed", "folds"], sort=True):
        folds, tested = int(folds), [int(fold) for fold in group["fold"]]
        row = {"experiment": experiment, "seed": int(seed), "folds": folds, "runs": ", ".join(sorted(group["run"]))}
        problems = []
        missing = [str(fold) for fold in range(1, folds + 1) if fold not in tested]
        if missing:
            problems.append(f"fold {', '.join(missing)} missing")
        for fold in sorted({fold for fold in tested if tested.count(fold) > 1}):
            twice = sorted(group.loc[group["fold"] == fold, "run"])
            problems.append(f"fold {fold} tested by {len(twice)} runs ({', '.join(twice)})")
        counts = pd.Series([video for ids in group["test video ids"].dropna() for video in ids]).value_counts()
        again = sorted(counts[counts > 1].index)
        if again:
            problems.append(f"{len(again)} video(s) tested in more than one fold (e.g. {again[0]}; the runs of "
                            f"one set must share data.folds and data.split_seed)")
        row["problem"] = "; ".join(problems)
        if not problems:
            videos = group["test videos"].astype(float)
            correct = (group["test video acc"] * videos).round()
            row.update({"test videos": int(videos.sum()), "correct test videos": int(correct.sum()),
                        "pooled test video acc": correct.sum() / videos.sum()})
            for column in stats_columns:
                row[f"{column} mean"] = group[column].mean()
                row[f"{column} std"] = group[column].std(ddof=1)
        rows.append(row)
    columns = ["experiment", "seed", "folds", "runs", "problem", "test videos", "correct test videos",
               "pooled test video acc"] + [f"{column} {stat}" for column in stats_columns for stat in ("mean", "std")]
    summary = pd.DataFrame(rows, columns=columns)
    summary["complete"] = summary["problem"] == ""
    summary = summary.sort_values(["complete", "val acc mean", "experiment", "seed"],
                                  ascending=[False, False, True, True], kind="stable")
    return summary.drop(columns="complete").reset_index(drop=True)


def kfold_markdown(summary: pd.DataFrame) -> str:
    """:func:`kfold_summary`'s frame as Markdown: the table of complete fold sets (accuracies in %), the
    notes, and one line per fold set that is not averaged."""
    complete = summary[summary["problem"] == ""]

    def spread(column):
        return [f"{100 * mean:.1f} ± {100 * std:.1f}" for mean, std in
                zip(complete[f"{column} mean"], complete[f"{column} std"])]

    table = pd.DataFrame({
        "experiment": complete["experiment"], "seed": complete["seed"], "folds K": complete["folds"],
        "test videos (each once)": [str(int(n)) for n in complete["test videos"]],
        "test video acc % (pooled over folds)": [f"{100 * acc:.1f}" for acc in complete["pooled test video acc"]],
        "test video acc % (mean ± std over folds)": spread("test video acc"),
        "test clip acc % (mean ± std over folds)": spread("test clip acc"),
        "val acc % (mean ± std over folds)": spread("val acc")})
    text = (table.to_markdown(index=False, disable_numparse=True) if len(table)
            else "No experiment has a complete set of fold runs.")
    text += ("\n\nK-fold cross-validation by group (data.split kfold): the groups (KTH: persons) are dealt into "
             "K folds; the run of fold k tests the videos of fold k and trains (and selects its model, on "
             "validation groups carved from them) on the others, so over the K runs every video is tested exactly "
             "once. 'pooled' is the correct test videos of all K runs over all their test videos; mean ± std is "
             "the sample std (ddof=1) over the K runs. A row is one experiment and one training seed (train.seed); "
             "the folds are the same for every seed (data.split_seed).")
    for _, row in summary[summary["problem"] != ""].iterrows():
        text += (f"\n\nNot averaged: {row['experiment']} seed {row['seed']}, {row['folds']} folds ({row['runs']}): "
                 f"{row['problem']}.")
    return text


def write_kfold(fold_runs: pd.DataFrame, out_dir: str | Path) -> pd.DataFrame:
    """Write ``out_dir/kfold.md`` (:func:`kfold_markdown`, under a header naming the data) and
    ``out_dir/kfold.csv`` (one row per fold run) for the runs of K-fold cross-validation made on one data
    source; log one line per fold set not averaged; return :func:`kfold_summary`."""
    summary = kfold_summary(fold_runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fold_runs.drop(columns="test video ids").sort_values(["experiment", "seed", "folds", "fold"]).to_csv(
        out_dir / "kfold.csv", index=False)
    data = fold_runs["data"].iloc[0]
    devices = ", ".join(sorted(map(str, fold_runs["train device"].fillna(fold_runs["device"]).unique())))
    header = (f"K-fold cross-validation on {data} (data fingerprint {fold_runs['fingerprint'].iloc[0][:17]}...), "
              f"trained and tested on: {devices}.\n\n")
    with atomic_write(out_dir / "kfold.md", "w") as f:
        f.write(header + kfold_markdown(summary) + "\n")
    for _, row in summary[summary["problem"] != ""].iterrows():
        logger.info("K-fold set not averaged, %s seed %s (%s folds): %s", row["experiment"], row["seed"],
                    row["folds"], row["problem"])
    logger.info("%d K-fold runs of %d experiments on %s -> %s/kfold.md, %s/kfold.csv", len(fold_runs),
                fold_runs["experiment"].nunique(), data, out_dir, out_dir)
    return summary


def runs_of_one_source(runs: pd.DataFrame, data_root=None) -> pd.DataFrame:
    """The runs of :func:`load_runs` made on one data source (:func:`pick_data_source`), without the per-class
    columns of the other sources' classes; a line says which runs were left out."""
    if runs.empty:
        return runs
    fingerprint = pick_data_source(runs, data_root)
    classes = runs.attrs.get("classes", {}).get(fingerprint)  # None for a frame not made by load_runs
    other = runs[runs["fingerprint"] != fingerprint]
    runs = runs[runs["fingerprint"] == fingerprint]
    if len(other):
        logger.info("left out %d runs made on other data (%s: %s); one table holds one data source", len(other),
                    ", ".join(sorted(set(other["data"]))), ", ".join(other["run"]))
    # the classes of this source stay, with no test video too (NaN: '–'); those of the other sources go
    return runs.drop(columns=[column for column in class_columns(runs.columns)
                              if (column.removesuffix(" acc") not in classes if classes is not None
                                  else runs[column].isna().all())])


def tables_header(runs: pd.DataFrame) -> str:
    """The line over results.md and comparisons.md: the data, its fingerprint, the split(s), the devices."""
    data = runs["data"].iloc[0]
    warning = "" if data == "real KTH" else ", **not on real KTH**"
    devices = ", ".join(sorted(map(str, runs["train device"].fillna(runs["device"]).unique())))
    splits = list(dict.fromkeys(runs["split"]))
    tested = splits[0] if len(splits) == 1 else f"{len(splits)} splits: {'; '.join(splits)}"
    return (f"Measured on {data}{warning} (data fingerprint {runs['fingerprint'].iloc[0][:17]}...; {tested}), "
            f"trained and tested on: {devices}.\n\n")


def write_tables(runs: pd.DataFrame, plan: SuitePlan, out_dir: str | Path, imgs_dir: str | Path) -> pd.DataFrame:
    """Write ``out_dir``'s results.csv, results.md and comparisons.md and ``imgs_dir``'s accuracy_vs_*.png for
    ``runs`` (one data source, outside K-fold cross-validation); return :func:`summarize_runs`."""
    summary = summarize_runs(runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.sort_values(["experiment", "seed"]).to_csv(out_dir / "results.csv", index=False)
    header = tables_header(runs)
    with atomic_write(out_dir / "results.md", "w") as f:
        f.write(header + to_markdown(summary) + "\n\n" + table_notes(summary) + "\n")
    comparisons = paired_differences(runs, plan)
    with atomic_write(out_dir / "comparisons.md", "w") as f:
        f.write(header + comparisons_markdown(comparisons) + "\n")
    for line in comparisons.attrs["skipped"]:
        logger.info("comparison skipped, %s", line)
    plot_accuracy_against(summary, "params", Path(imgs_dir) / "accuracy_vs_params.png", "trainable parameters",
                          logx=True)
    plot_accuracy_against(summary, "epoch s (train+val)", Path(imgs_dir) / "accuracy_vs_epoch_time.png",
                          "epoch wall time, validation included (s)")
    logger.info("%d runs of %d experiments on %s -> %s/results.md, %s/comparisons.md, %s/results.csv, "
                "%s/accuracy_vs_*.png", len(runs), len(summary), runs["data"].iloc[0], out_dir, out_dir, out_dir,
                imgs_dir)
    return summary


def compare(models_dir=RECORD_MODELS_DIR, out_dir=None, imgs_dir=None, configs_dir="configs",
            data_root=None) -> pd.DataFrame | None:
    """Write the CSV, the Markdown tables and the plots for the runs made on one data source
    (``data_root``'s, else the one most runs were made on); return the summary (None if no
    results on it, and then nothing is written). The runs of K-fold cross-validation go to their own
    tables, kfold.md and kfold.csv (:func:`write_kfold`), not into the others (None is returned when
    there are no others). ``out_dir`` (tables) and ``imgs_dir`` (figures) default to :func:`output_dirs`
    of ``models_dir``; the experiments expected and the comparisons are ``configs_dir``'s suite.yaml's.
    What is left out, and where the outputs went, is logged."""
    out_dir = output_dirs(models_dir)["out"] if out_dir is None else out_dir
    imgs_dir = output_dirs(models_dir)["imgs"] if imgs_dir is None else imgs_dir
    plan = load_plan(configs_dir)
    runs, unknown = load_runs(models_dir)
    if unknown:
        logger.info("left out %d results.json without provenance (made by older code): %s; 'python -m src.suite' "
                    "makes them again", len(unknown), ", ".join(unknown))
    runs = runs_of_one_source(runs, data_root)
    done = set(runs["experiment"]) if len(runs) else set()
    missing = [name for name in plan.experiments if name not in done]
    if missing:
        logger.info("no results yet for: %s (run 'python -m src.suite' or train them one by one)", ", ".join(missing))
    if runs.empty:
        logger.info("no %s/*/results.json with provenance on this data found: nothing to compare", models_dir)
        return None
    fold_runs, runs = runs[runs["fold"].notna()], runs[runs["fold"].isna()].drop(columns=FOLD_COLUMNS)
    if len(fold_runs):
        write_kfold(fold_runs, out_dir)
    if runs.empty:
        logger.info("no runs outside K-fold cross-validation: results.md, comparisons.md, results.csv and the "
                    "figures not written")
        return None
    summary = write_tables(runs, plan, out_dir, imgs_dir)
    write_early(runs, models_dir, out_dir, imgs_dir, list(summary.index), tables_header)
    return summary

"""Gather every experiment's results into one table and the comparison plots.

    python -m src.compare [--models-dir models] [--out results] [--imgs imgs]

Reads ``models/<run>/results.json`` (written by ``src.evaluate``), groups the runs of
one experiment (``GRUCell``, ``GRUCell_seed1``, ... -> ``GRUCell``), and writes

- ``results/results.csv``: one row per run, every measured number;
- ``results/results.md``: one row per experiment, mean ± std over its seeds;
- ``imgs/accuracy_vs_params.png``, ``imgs/accuracy_vs_epoch_time.png``.

It works on any subset of finished experiments and says which of ``configs/*.yaml``
have no results yet.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from src.kth import ACTIONS

# results.json key -> table column
COLUMNS = {
    "experiment": "experiment",
    "run": "run",
    "seed": "seed",
    "num_params": "params",
    "train_time_per_epoch_s": "train s/epoch",
    "latency_ms": "latency ms (b=1)",
    "throughput_clips_per_s": "clips/s (b=32)",
    "val_accuracy": "val acc",
    "clip_accuracy": "test clip acc",
    "video_accuracy": "test video acc",
}
ACCURACY_COLUMNS = ["val acc", "test clip acc", "test video acc"] + [f"{a} acc" for a in ACTIONS]


def experiment_of(run: str) -> str:
    """``'GRUCell_seed2' -> 'GRUCell'``: the runs of one config with other seeds."""
    return re.sub(r"_seed\d+$", "", run)


def load_runs(models_dir: str | Path = "models") -> pd.DataFrame:
    """One row per ``models/<run>/results.json``, with the columns of :data:`COLUMNS`
    plus one per-class test accuracy column per action. Empty frame when none exist."""
    rows = []
    for path in sorted(Path(models_dir).glob("*/results.json")):
        results = json.loads(path.read_text())
        run = results.get("experiment", path.parent.name)
        row = {"run": run, "experiment": experiment_of(run)}
        row.update({col: results.get(key) for key, col in COLUMNS.items() if key not in ("run", "experiment")})
        for action, acc in (results.get("per_class_accuracy") or {}).items():
            row[f"{action} acc"] = acc
        row["synthetic"] = results.get("synthetic")
        row["device"] = results.get("device")
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: mean and std of every numeric column over its runs."""
    numeric = runs.drop(columns=["run", "seed", "synthetic", "device"], errors="ignore")
    grouped = numeric.groupby("experiment", sort=False)
    summary = grouped.mean(numeric_only=True)
    summary.columns = [f"{c} mean" for c in summary.columns]
    std = grouped.std(numeric_only=True, ddof=0)
    std.columns = [f"{c} std" for c in std.columns]
    summary = summary.join(std)
    summary.insert(0, "seeds", grouped.size())
    return summary.sort_values("test video acc mean", ascending=False)


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table with ``mean ± std`` cells (accuracies in %)."""
    table = pd.DataFrame(index=summary.index)
    table["seeds"] = summary["seeds"]
    for col in ["params", "train s/epoch", "latency ms (b=1)", "clips/s (b=32)"] + ACCURACY_COLUMNS:
        if f"{col} mean" not in summary:
            continue
        mean, std = summary[f"{col} mean"], summary[f"{col} std"]
        scale, fmt = (100, "{:.1f}") if col in ACCURACY_COLUMNS else (1, "{:,.0f}" if col == "params" else "{:.2f}")
        cells = []
        for m, s, n in zip(mean, std, summary["seeds"]):
            cell = fmt.format(m * scale)
            if n > 1 and col != "params":
                cell += " ± " + fmt.format(s * scale)
            cells.append(cell)
        table[col.replace("acc", "acc %")] = cells
    return table.to_markdown()


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


def compare(models_dir="models", out_dir="results", imgs_dir="imgs", configs_dir="configs") -> pd.DataFrame | None:
    """Write the CSV, the Markdown table and the plots; return the summary (None if no results)."""
    expected = sorted(p.stem for p in Path(configs_dir).glob("*.yaml") if p.stem != "base")
    runs = load_runs(models_dir)
    done = set(runs["experiment"]) if len(runs) else set()
    missing = [name for name in expected if name not in done]
    if missing:
        print(f"no results yet for: {', '.join(missing)} (run 'python -m src.suite' or train them one by one)")
    if runs.empty:
        print(f"no {models_dir}/*/results.json found: nothing to compare")
        return None
    summary = summarize(runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.sort_values(["experiment", "seed"]).to_csv(out_dir / "results.csv", index=False)
    synthetic = runs["synthetic"].dropna().unique().tolist()
    data = "the synthetic KTH twin" if synthetic == [True] else "real KTH" if synthetic == [False] else "mixed data"
    devices = ", ".join(sorted(map(str, runs["device"].dropna().unique())))
    header = (f"Measured on {data} (test persons 17-25; model selection on validation persons), "
              f"device: {devices}. Mean ± std over seeds.\n\n")
    (out_dir / "results.md").write_text(header + to_markdown(summary) + "\n")
    plot_accuracy_against(summary, "params", Path(imgs_dir) / "accuracy_vs_params.png", "trainable parameters",
                          logx=True)
    plot_accuracy_against(summary, "train s/epoch", Path(imgs_dir) / "accuracy_vs_epoch_time.png",
                          "training time per epoch (s)")
    print(f"{len(runs)} runs of {len(summary)} experiments -> {out_dir}/results.md, {out_dir}/results.csv, "
          f"{imgs_dir}/accuracy_vs_*.png")
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m src.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--out", default="results", help="where results.md and results.csv go")
    parser.add_argument("--imgs", default="imgs", help="where the plots go")
    parser.add_argument("--configs", default="configs")
    args = parser.parse_args(argv)
    compare(args.models_dir, args.out, args.imgs, args.configs)


if __name__ == "__main__":
    main()

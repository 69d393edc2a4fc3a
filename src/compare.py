"""Gather every experiment's results into one table and the comparison plots.

    python -m src.compare [--models-dir models] [--out results] [--imgs imgs] [--configs configs] [--data DIR]

Reads ``models/<run>/results.json`` (written by ``src.evaluate``), groups the runs of one experiment
(``GRUCell``, ``GRUCell_seed1``, ... -> ``GRUCell``), and writes ``results.csv`` (one row per run),
``results.md`` (one row per experiment: mean ± std over its seeds, the 95 % t-interval of its mean test video
accuracy), ``comparisons.md`` (the paired comparisons of ``configs/suite.yaml``), ``accuracy_vs_params.png``,
``accuracy_vs_epoch_time.png`` and, for runs of K-fold cross-validation (``python -m src.suite --folds K``),
``kfold.md`` and ``kfold.csv``, and for the runs that record early recognition ``early_recognition.md`` and
``early_recognition.png`` (src/early_analysis.py). What each holds: src/analysis.py.

Where they go (src.analysis.output_dirs): ``results/`` and ``imgs/`` (the committed tables and figures of record)
only for the default ``--models-dir models``. With ``--models-dir DIR``, any other folder, every output goes into
DIR itself (``DIR/results.md``, ...; files, which the ``DIR/<run>/results.json`` of the runs never match), unless
``--out``/``--imgs`` say otherwise.

It works on any subset of finished experiments and says which of ``configs/suite.yaml``'s have no results yet. One
table holds one data source only: ``--data`` picks it (default: the source most runs were made on). Results
without provenance (made by older code) are left out, and a line says so. A results.json in the folder of another
run, or one run's results twice, get one ``error:`` line naming the files, and nothing is written.
"""
from __future__ import annotations

import argparse
import logging
import sys

from src.analysis import RECORD_MODELS_DIR, RunsError, compare
from src.config import ConfigError, load_plan
from src.files import folder_refusal


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m src.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", default=RECORD_MODELS_DIR,
                        help="the runs' folder (default: models; its tables and figures are results/ and imgs/)")
    parser.add_argument("--out", default=None, help="where results.md, comparisons.md and results.csv go "
                                                    "(default: results for --models-dir models, else the models dir)")
    parser.add_argument("--imgs", default=None,
                        help="where the plots go (default: imgs for --models-dir models, else the models dir)")
    parser.add_argument("--configs", default="configs")
    parser.add_argument("--data", default=None,
                        help="prepared data folder whose runs make the table (default: the source of most runs)")
    args = parser.parse_args(argv)
    for refusal in (folder_refusal("--models-dir", args.models_dir, "the runs (<run>/results.json)"),
                    folder_refusal("--configs", args.configs, "the experiment configs"),
                    folder_refusal("--out", args.out), folder_refusal("--imgs", args.imgs)):
        if refusal:
            parser.error(refusal)
    try:
        load_plan(args.configs)  # a bad configs/suite.yaml gets its line before any work
    except ConfigError as error:
        parser.error(str(error))
    logging.basicConfig(format="%(message)s", stream=sys.stdout)  # src.analysis's lines, as this command's output
    logging.getLogger("src").setLevel(logging.INFO)
    try:
        compare(args.models_dir, args.out, args.imgs, args.configs, data_root=args.data)
    except (FileNotFoundError, RunsError) as error:  # RunsError: before anything is written
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()

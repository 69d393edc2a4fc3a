"""The early-recognition tables and figure of ``python -m src.compare`` (issue 32), from the records that
``src.evaluate`` writes into results.json (src/training/early.py: ``early_recognition``, ``state_rules``).

:func:`write_early` writes, for the runs that have the records (the others are left out, and a line says so;
when none has them nothing is written):

- ``early_recognition.md``: per experiment, mean ± std over its seeds (ddof=1) of the test accuracy after t = 1, 2,
  ..., max_frames steps of each test clip played as a stream, after 10 %, ..., 100 % of each test subsequence
  played as a stream under the default state rule, and, for the recurrent models, each state rule's accuracy on
  whole subsequences and whole test videos (after the last frame, and the mean over every step), and the state
  rule the validation split picks: each rule's accuracy on the whole validation subsequences (``state_rules
  ["validation"]``, :data:`PICKED_BY`), the rule with the highest, and that rule's test accuracy; where the records
  lack the validation numbers (results.json of src.evaluate before it measured them), one line says so;
- ``early_recognition.png``: accuracy against the frames seen (steps of a clip; share of a subsequence), one
  curve per experiment (the mean over its seeds), the band its seeds' spread (± std).

Imports nothing of src.analysis (which calls it).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.files import atomic_write

logger = logging.getLogger(__name__)

RULE_KINDS = {"subsequences": "whole test subsequences", "videos": "whole test videos"}
SCORES = {"final": "end", "per_step": "every step"}
PICKED_BY = ("subsequences", "per_step")
"""The validation score a state rule is picked on (``state_rules["validation"][kind][rule][score]``): the mean over
the whole validation subsequences, each played as a stream, of the share of its answers that are right: a stream
answers at every step."""


def load_early(models_dir: str | Path, runs: pd.DataFrame) -> dict[str, dict]:
    """``{run: its results.json's early_recognition and state_rules}`` for the runs of ``runs`` (src.analysis's
    rows: ``run``, ``experiment``, ``seed``) whose ``<models_dir>/<run>/results.json`` has them; each record also
    gets the run's ``experiment`` and ``seed``."""
    records = {}
    for run, experiment, seed in zip(runs["run"], runs["experiment"], runs["seed"]):
        results = json.loads((Path(models_dir) / run / "results.json").read_text())
        if results.get("early_recognition"):
            records[run] = {"experiment": experiment, "seed": seed, "early": results["early_recognition"],
                            "rules": results.get("state_rules")}
    return records


@dataclass
class Curve:
    """Accuracy against frames seen, per experiment: ``mean`` and ``std`` (ddof=1; NaN for one run) over its runs,
    DataFrames with one row per experiment and one column per x (a step, a share in %), and ``seeds`` (runs)."""

    mean: pd.DataFrame
    std: pd.DataFrame
    seeds: pd.Series


def curves(records: dict[str, dict], x: str, y: str) -> Curve:
    """The :class:`Curve` of the records' ``y`` list (``clip_accuracy`` or ``subsequence_accuracy``, shares in
    [0, 1]) against their ``x`` list (``steps`` or ``percents``)."""
    rows = pd.DataFrame([{"experiment": record["experiment"], **dict(zip(record["early"][x], record["early"][y]))}
                         for record in records.values()])
    grouped = rows.groupby("experiment", sort=True)
    columns = sorted(column for column in rows.columns if column != "experiment")
    return Curve(grouped[columns].mean(), grouped[columns].std(ddof=1), grouped.size())


def rule_table(records: dict[str, dict], split: str = "test") -> pd.DataFrame:
    """One row per recurrent experiment: mean and std over its runs of each state rule's scores on ``split``
    (``'test'``: ``state_rules``' own; ``'validation'``: ``state_rules["validation"]``, the runs that record it),
    columns ``(kind, rule, score, 'mean'|'std')``; empty when no record has them."""
    measured = [(record["experiment"], record["rules"] if split == "test" else record["rules"].get(split))
                for record in records.values() if record["rules"]]
    measured = [(experiment, rules) for experiment, rules in measured if rules]
    if not measured:
        return pd.DataFrame()
    values = pd.DataFrame([{(kind, rule, score): value for kind in RULE_KINDS if kind in rules
                            for rule, scores in rules[kind].items() for score, value in scores.items()}
                           for _, rules in measured], index=[experiment for experiment, _ in measured])
    values.columns = pd.MultiIndex.from_tuples(values.columns)
    grouped = values.groupby(level=0, sort=True)
    return pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=1)}, axis=1)


def with_validation(records: dict[str, dict]) -> dict[str, dict]:
    """The records that hold the state rules on the validation split too."""
    return {run: record for run, record in records.items() if record["rules"] and record["rules"].get("validation")}


def picked_rules(validation: pd.DataFrame, defaults: dict[str, str]) -> dict[str, str]:
    """``{experiment: the rule with the highest mean validation score}`` (:data:`PICKED_BY`) of
    ``validation`` (:func:`rule_table` on ``'validation'``); a tie goes to the experiment's default rule
    (``defaults``: the rule its early-recognition record streamed with), then to the first by name."""
    kind, score = PICKED_BY
    state_rules = sorted({rule for _, _, rule, _ in validation.columns})
    return {name: max(state_rules, key=lambda rule: (round(validation.loc[name, ("mean", kind, rule, score)], 12),
                                                     rule == defaults.get(name)))  # max: the first of equals
            for name in validation.index}


def spread_cell(mean: float, std: float, seeds: int) -> str:
    """``'81.2 ± 1.3'`` (%; the ± only for several seeds), ``'–'`` for no value."""
    if mean is None or np.isnan(mean):
        return "–"
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if seeds > 1 and not np.isnan(std) else "")


def curve_markdown(curve: Curve, order: list[str], label) -> str:
    """A :class:`Curve` as a Markdown table: one row per experiment of ``order`` (those it has), ``label(x)``
    heads the column of x."""
    order = [name for name in order if name in curve.mean.index]
    table = pd.DataFrame({"experiment": order, "seeds": [str(int(curve.seeds[name])) for name in order]})
    for x in curve.mean.columns:
        table[label(x)] = [spread_cell(curve.mean.loc[name, x], curve.std.loc[name, x], int(curve.seeds[name]))
                           for name in order]
    return table.to_markdown(index=False, disable_numparse=True)


def rules_markdown(rules: pd.DataFrame, seeds: pd.Series, order: list[str]) -> str:
    """The state-rule table as Markdown: one row per recurrent experiment and rule, per kind of stream its accuracy
    after the last frame ('end') and over every step."""
    order = [name for name in order if name in rules.index]
    kinds_scores = list(dict.fromkeys((kind, score) for _, kind, _, score in rules.columns))
    state_rules = list(dict.fromkeys(rule for _, _, rule, _ in rules.columns))
    rows = []
    for name in order:
        for rule in state_rules:
            rows.append({"experiment": name, "seeds": str(int(seeds[name])), "rule": rule, **{
                f"{RULE_KINDS[kind]}, {SCORES[score]}": spread_cell(rules.loc[name, ("mean", kind, rule, score)],
                                                                    rules.loc[name, ("std", kind, rule, score)],
                                                                    int(seeds[name]))
                for kind, score in kinds_scores}})
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def validation_markdown(records: dict[str, dict], order: list[str]) -> str:
    """The section of the state rule chosen on validation: per recurrent experiment, each rule's validation score
    (:data:`PICKED_BY`), the rule it picks (:func:`picked_rules`) and that rule's test scores, all over the runs
    that record the rules on validation; one line instead where none does."""
    chosen = with_validation(records)
    heading = "## The state rule chosen on the validation split (%)\n\n"
    if not chosen:
        return (heading + "Not measured: no run's results.json records the state rules on the validation split "
                "(src.evaluate before it measured them), so no rule is chosen on validation here; "
                "`python -m src.evaluate --checkpoint <run>/best.pth` records them.")
    validation, test = rule_table(chosen, "validation"), rule_table(chosen)
    seeds = pd.Series([record["experiment"] for record in chosen.values()]).value_counts()
    picked = picked_rules(validation, {record["experiment"]: record["early"]["rule"] for record in chosen.values()})
    kind, score = PICKED_BY
    state_rules = sorted({rule for _, _, rule, _ in validation.columns})

    def cell(table: pd.DataFrame, name: str, rule: str, score: str) -> str:
        return spread_cell(table.loc[name, ("mean", kind, rule, score)], table.loc[name, ("std", kind, rule, score)],
                           int(seeds[name]))

    rows = [{"experiment": name, "seeds": str(int(seeds[name])),
             **{f"{rule}: validation, {SCORES[score]}": cell(validation, name, rule, score) for rule in state_rules},
             "picked on validation": picked[name],
             f"picked rule: test, {SCORES[score]}": cell(test, name, picked[name], score),
             "picked rule: test, end": cell(test, name, picked[name], "final")}
            for name in order if name in validation.index]
    left_out = sorted(run for run, record in records.items() if record["rules"] and run not in chosen)
    return (heading + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
            + "\n\nEach whole subsequence of each validation video (the validation persons or groups, on which "
            "models are selected; made as the test ones) played as one stream under each rule at its defaults. The "
            f"rule with the highest mean validation '{SCORES[score]}' accuracy (over the seeds; a tie goes to the "
            "default rule) is the one validation picks; its test accuracy, on the whole test subsequences, is read "
            "from the same runs, and plays no part in the choice."
            + (f" Left out {len(left_out)} runs whose records lack the validation numbers: {', '.join(left_out)}."
               if left_out else ""))


def soonest(curve: Curve, x, what: str) -> str:
    """``'after 1 step: GRUCell (41.0 %)'``: the experiment with the highest mean accuracy at ``x``."""
    means = curve.mean[x].dropna() if x in curve.mean else pd.Series(dtype=float)
    return f"after {what}: {means.idxmax()} ({100 * means.max():.1f} %)" if len(means) else f"after {what}: –"


def early_markdown(records: dict[str, dict], order: list[str]) -> str:
    """The three tables of early_recognition.md and their notes."""
    steps, shares = curves(records, "steps", "clip_accuracy"), curves(records, "percents", "subsequence_accuracy")
    order = [*order, *sorted(set(steps.mean.index) - set(order))]
    rules = {record["experiment"]: record["early"]["rule"] for record in records.values()}
    step_of = sorted({record["early"]["frame_step"] for record in records.values()})
    text = ("## Accuracy after t steps of a test clip (%)\n\n" + curve_markdown(steps, order, lambda t: f"t={t}")
            + "\n\nEach test clip (the test pass's) played as a stream, one frame a step (one every "
            f"{', '.join(map(str, step_of))} frames of the video); its answer after t steps. A recurrent model's "
            "stream answers exactly as the model on the clip's first t frames, so the last column is the test clip "
            "accuracy; R(2+1)D answers on its window, the t frames seen as they are (no padding), so there too.\n\n"
            "## Accuracy after p % of a test subsequence (%)\n\n"
            + curve_markdown(shares, order, lambda p: f"{p} %")
            + "\n\nEach annotated subsequence of each test video (those one clip long or more) played as a stream "
            "from its first frame, read after ceil(p·L/100) of its L steps. The stream's rule: "
            + ", ".join(f"{name} '{rules[name]}'" for name in order if name in rules)
            + f".\n\nHighest mean accuracy {soonest(steps, 1, '1 step')}; {soonest(shares, 10, '10 %')}; "
            f"{soonest(shares, 50, '50 %')}.")
    table = rule_table(records)
    if len(table):
        text += ("\n\n## State rules of the recurrent models on whole streams (%)\n\n"
                 + rules_markdown(table, steps.seeds, order)
                 + "\n\nEach test subsequence (and, where recorded, each test video whole) played as one stream under "
                 "each rule at "
                 "its defaults (src/nets/streaming.py: carry, reset every max_frames steps, window of 2 staggered "
                 "states): 'end' is the accuracy of the answer after its last frame, 'every step' the mean over "
                 "streams of the share of their answers that are right.\n\n" + validation_markdown(records, order))
    return text + ("\n\nmean ± sample std (ddof=1) over an experiment's seeds (runs with these records only); a "
                   "single run has none.")


def write_early(runs: pd.DataFrame, models_dir: str | Path, out_dir: str | Path, imgs_dir: str | Path,
                order: list[str], header) -> dict[str, dict]:
    """Write ``out_dir/early_recognition.md`` (under ``header(the runs with records)``, the line over the other
    tables) and ``imgs_dir/early_recognition.png`` for the
    runs of ``runs`` that have the records (:func:`load_early`); ``order``: the experiments' row order. Nothing is
    written when none has them. Returns the records."""
    records = load_early(models_dir, runs)
    left_out = sorted(set(runs["run"]) - set(records))
    if not records:
        logger.info("no run records early recognition (results.json of src.evaluate before it measured it): "
                    "early_recognition.md and .png not written")
        return records
    if left_out:
        logger.info("early recognition: left out %d runs without its records: %s", len(left_out), ", ".join(left_out))
    out_dir, imgs_dir = Path(out_dir), Path(imgs_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / "early_recognition.md", "w") as f:
        f.write(header(runs[runs["run"].isin(list(records))]) + early_markdown(records, list(order)) + "\n")
    from src.plots import early_recognition_figure, save_figure
    steps, shares = curves(records, "steps", "clip_accuracy"), curves(records, "percents", "subsequence_accuracy")
    save_figure(early_recognition_figure(steps, shares, list(order)), imgs_dir / "early_recognition.png")
    logger.info("early recognition of %d runs -> %s/early_recognition.md, %s/early_recognition.png", len(records),
                out_dir, imgs_dir)
    return records

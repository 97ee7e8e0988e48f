"""Your data, described as it is, and the candidate losses it calls for.

With ``lossatlas compare --data FILE.csv`` the report describes *that* file -- rows, features,
the task inferred from the target and why, the class balance or the target's distribution --
and the candidates follow from it:

* **regression**: MSE, MAE and Huber always; log-cosh and pseudo-Huber too when the target is
  *heavy-tailed*: more than 1 % of the values lie beyond 3 robust deviations of the median
  (robust deviation = 1.4826 x the median absolute deviation; a Gaussian puts 0.27 % there);
* **binary**: BCE and binary focal always; ``pos_weight`` BCE, class-balanced and GHM-C too when
  the minority class is under 20 % of the rows;
* **multiclass**: CE, label smoothing, focal and PolyLoss always; the class-balanced losses too
  when the largest class has at least 3 times the rows of the smallest.

Each candidate carries the reason it is in; the report lists them, and the losses left out.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lossatlas.lab.data import TabularData, split_tabular
from lossatlas.lab.tasks import Task

__all__ = ["HEAVY_TAIL_SHARE", "IMBALANCE_RATIO", "MINORITY_SHARE", "describe", "own_data_task"]

#: A target is heavy-tailed above this share of values beyond 3 robust deviations.
HEAVY_TAIL_SHARE = 0.01
#: A binary target is imbalanced below this minority share.
MINORITY_SHARE = 0.20
#: A multi-class target is imbalanced at or above this largest / smallest class ratio.
IMBALANCE_RATIO = 3.0


def _skew(y: np.ndarray) -> float:
    centred = y - y.mean()
    sd = centred.std()
    return float((centred**3).mean() / sd**3) if sd > 0 else 0.0


def describe(table: TabularData) -> dict[str, Any]:
    """What the data look like: numbers, and ``lines`` for the report.

    Returns:
        ``rows``, ``rows_read``, ``features``, ``kind``, ``why`` (the inference), the dropped
        columns, and for classes ``class_counts`` / ``minority_share`` / ``imbalance_ratio`` /
        ``imbalanced``, for a regression ``mean``, ``median``, ``std``, ``skew``,
        ``robust_deviation``, ``beyond_3_robust`` (share) and ``heavy_tailed``.
    """
    name = Path(table.source).name
    rows, features = table.features.shape
    out: dict[str, Any] = {
        "file": name,
        "rows": int(rows),
        "rows_read": int(table.rows_read or rows),
        "features": int(features),
        "feature_names": list(table.feature_names),
        "target": table.target_name,
        "kind": table.kind,
        "why": table.kind_reason,
        "dropped_columns": list(table.dropped_columns),
    }
    dropped = out["rows_read"] - rows
    lines = [
        f"{name}: {rows} rows"
        + (f" ({dropped} of {out['rows_read']} dropped for empty cells)" if dropped else "")
        + f", {features} numeric feature{'s' if features != 1 else ''}, target "
        f"{table.target_name!r}",
        f"task: {table.kind}, because: {table.kind_reason}",
    ]
    if table.dropped_columns:
        lines.append(
            "dropped as row indices, not features: " + ", ".join(map(repr, table.dropped_columns))
        )
    if table.kind == "regression":
        y = table.target.astype(np.float64)
        median = float(np.median(y))
        robust = 1.4826 * float(np.median(np.abs(y - median)))
        beyond = float(np.mean(np.abs(y - median) > 3 * robust)) if robust > 0 else 0.0
        out.update(
            mean=float(y.mean()),
            median=median,
            std=float(y.std(ddof=1)) if len(y) > 1 else 0.0,
            skew=_skew(y),
            robust_deviation=robust,
            beyond_3_robust=beyond,
            heavy_tailed=beyond > HEAVY_TAIL_SHARE,
        )
        tail = (
            "heavy-tailed" if out["heavy_tailed"] else "not heavy-tailed"
        ) + f" (over {HEAVY_TAIL_SHARE:.0%} beyond 3 robust deviations is; a Gaussian has 0.27 %)"
        lines.append(
            f"target: mean {out['mean']:.4g}, median {median:.4g}, std {out['std']:.4g}, skew "
            f"{out['skew']:.2f}; {beyond:.1%} of the values lie beyond 3 robust deviations "
            f"(1.4826 MAD = {robust:.4g}) of the median: {tail}"
        )
    else:
        counts = np.bincount(table.target, minlength=len(table.class_names or []))
        names = table.class_names or [str(i) for i in range(len(counts))]
        shares = counts / counts.sum()
        out.update(
            class_counts={n: int(c) for n, c in zip(names, counts, strict=True)},
            minority_share=float(shares.min()),
            imbalance_ratio=float(counts.max() / max(counts.min(), 1)),
        )
        if table.kind == "binary":
            out["imbalanced"] = out["minority_share"] < MINORITY_SHARE
            rule = f"minority under {MINORITY_SHARE:.0%}"
        else:
            out["imbalanced"] = out["imbalance_ratio"] >= IMBALANCE_RATIO
            rule = f"largest / smallest class at least {IMBALANCE_RATIO:g}"
        balance = ", ".join(
            f"{n!r} {c} ({s:.1%})" for n, c, s in zip(names, counts, shares, strict=True)
        )
        lines.append(
            f"classes: {balance}; largest / smallest = {out['imbalance_ratio']:.2g}: "
            + ("imbalanced" if out["imbalanced"] else "balanced")
            + f" (imbalanced means {rule})"
        )
    out["lines"] = lines
    return out


#: The candidates each kind always takes: key -> why it is in.
_ALWAYS = {
    "regression": {
        "mse": "the standard loss (fits the conditional mean)",
        "mae": "the robust baseline (fits the median; an outlier pulls it by its sign only)",
        "huber": "quadratic for small errors, linear for large ones: between MSE and MAE",
    },
    "binary": {
        "bce": "the standard loss for one logit",
        "binary_focal": "down-weights easy examples (hard-example mining)",
    },
    "multiclass": {
        "ce": "the standard loss for softmax logits",
        "label_smoothing": "softer targets, often better calibrated",
        "focal": "down-weights easy examples",
        "poly1": "cross-entropy plus a polynomial term (PolyLoss)",
    },
}
#: The candidates each kind takes when the data call for them (a heavy-tailed target,
#: imbalanced classes): key -> why it is in, before the measured fact.
_CALLED_FOR = {
    "regression": {
        "log_cosh": "smooth robust loss; the target is heavy-tailed",
        "pseudo_huber": "smooth Huber; the target is heavy-tailed",
    },
    "binary": {
        "bce_pos_weight": "imbalance-aware: weights positives by #neg / #pos",
        "class_balanced_sigmoid": "imbalance-aware: effective-number class weights",
        "ghmc": "imbalance-aware: gradient-harmonised, damps the easy majority",
    },
    "multiclass": {
        "class_balanced_softmax": "imbalance-aware: effective-number class weights",
        "class_balanced_focal": "imbalance-aware: class-balanced focal loss",
    },
}


def _evidence(kind: str, facts: dict[str, Any]) -> tuple[bool, str, str]:
    """Whether the data call for ``_CALLED_FOR[kind]``, the fact measured, and why not."""
    if kind == "regression":
        tail = f"{facts['beyond_3_robust']:.1%} of the target beyond 3 robust deviations"
        return facts["heavy_tailed"], tail, "the target is not heavy-tailed"
    if kind == "binary":
        fact = f"minority share {facts['minority_share']:.1%}"
    else:
        fact = f"largest / smallest class {facts['imbalance_ratio']:.2g}"
    return facts["imbalanced"], fact, "the classes are balanced"


def _choose(kind: str, facts: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Candidate key -> why it is in; and key -> why it is left out."""
    called, fact, not_called = _evidence(kind, facts)
    chosen = dict(_ALWAYS[kind])
    if called:
        chosen.update({key: f"{why} ({fact})" for key, why in _CALLED_FOR[kind].items()})
        return chosen, {}
    return chosen, dict.fromkeys(_CALLED_FOR[kind], f"{not_called} ({fact})")


def own_data_task(base: Task, table: TabularData) -> tuple[Task, dict[str, Any]]:
    """The task for a CSV file: ``base``'s model and metrics on the file, candidates by the data.

    Returns:
        The task (its ``load(seed)`` splits the file; ``defaults`` the candidates the data call
        for, each with its ``why``) and :func:`describe`'s facts, with ``left_out``.
    """
    facts = describe(table)
    chosen, left_out = _choose(table.kind, facts)
    candidates = tuple(
        dataclasses.replace(
            c, why=chosen.get(c.key, left_out.get(c.key, "asked for with --losses"))
        )
        for c in base.candidates
    )
    facts["left_out"] = left_out
    if left_out:
        facts["lines"].append(
            "left out: " + "; ".join(f"{k} ({why})" for k, why in left_out.items())
        )
    name = Path(table.source).name
    task = dataclasses.replace(
        base,
        name=f"{table.kind} ({name})",
        description=(
            f"your data: {name}, {facts['rows']} rows x {facts['features']} features, "
            f"{table.kind} target {table.target_name!r}"
        ),
        load=partial(split_tabular, table),
        candidates=candidates,
        defaults=tuple(k for k in chosen if any(c.key == k for c in candidates)),
    )
    return task, facts

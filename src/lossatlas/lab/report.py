"""Reports of ``lossatlas compare``: the verdict, the table, JSON, Markdown and plots.

The verdict of each metric comes from :func:`lossatlas.lab.stats.decide` on the per-seed table
of the runs (a pure function of the per-run results): a paired, exact sign-flip test of the best
candidate against each other one, Holm-corrected, with the mean paired difference, its 95 % t
interval and the win count. See :mod:`lossatlas.lab.stats` for the rule.

Files written to the output directory:

* ``report.json`` -- the config, the data (described, with your own data), every run (metrics,
  per-epoch loss and parts, block fingerprints), and per metric: the per-seed values, the paired
  differences, raw and Holm p-values, the intervals, win counts, the top group, the
  recommendation and the test used;
* ``report.md`` -- the verdict in a paragraph, the table, the statistics, the notes, the plots;
* ``metrics.png`` -- per metric, each candidate's mean rank over the seeds with the top group
  marked (a critical-difference style plot), and the paired differences from the best per seed;
* ``curves/<candidate>.png`` -- training loss per epoch for every seed (parts dashed).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossatlas._optional import pyplot
from lossatlas.lab.compare import Comparison
from lossatlas.lab.html import comparison_page, write_page
from lossatlas.lab.metrics import Metric
from lossatlas.lab.stats import ALPHA, MetricDecision, decide, min_p

__all__ = [
    "Warning_",
    "below_chance",
    "decisions",
    "fmt",
    "heading",
    "markdown",
    "report_dict",
    "rich_table",
    "verdict_lines",
    "write_report",
]


def fmt(value: float, digits: int | None = None) -> str:
    """About four significant digits, at most 3 decimals (``48.65``, ``0.953``, ``175991``)."""
    if value is None or math.isnan(value):
        return "n/a"
    if digits is None:
        magnitude = math.floor(math.log10(abs(value))) if value else 0
        digits = min(3, max(0, 3 - magnitude))
    return f"{value:.{digits}f}"


def _signed(value: float, digits: int | None = None) -> str:
    text = fmt(abs(value), digits)
    return ("-" if value < 0 else "+") + text


def decisions(comparison: Comparison) -> list[MetricDecision]:
    """The verdict of every metric of the task, in the task's order."""
    order = [c.key for c in comparison.candidates]
    return [
        decide(
            comparison.table(m.key),
            higher_is_better=m.higher_is_better,
            metric=m.key,
            order=order,
        )
        for m in comparison.task.metrics
    ]


@dataclass(frozen=True)
class Warning_:
    """A candidate whose mean is no better than a model that learned nothing."""

    candidate: str
    metric: str
    mean: float
    chance: float
    text: str


def below_chance(comparison: Comparison) -> list[Warning_]:
    """Candidates at or beyond a metric's chance level (not results: the model did not learn)."""
    out = []
    for metric in comparison.task.metrics:
        chance = comparison.chance(metric.key)
        if chance is None:
            continue
        for key, values in comparison.table(metric.key).items():
            finite = [v for v in values if not math.isnan(v)]
            if not finite:
                continue
            mean = statistics.fmean(finite)
            if metric.no_better_than(mean, chance):
                text = (
                    f"{key}: {metric.label} {fmt(mean)} is no better than {metric.chance_text} "
                    f"({fmt(chance)}): on this metric it is worth no more than a model that "
                    "learned nothing"
                )
                out.append(Warning_(key, metric.key, mean, chance, text))
    return out


def row_label(comparison: Comparison, key: str) -> str:
    """``huber = smooth_l1`` for a candidate with identical ones merged into it."""
    return " = ".join([key, *(m.key for m in comparison.merged.get(key, []))])


def _same_text(comparison: Comparison, key: str) -> str:
    """``smooth_l1 = huber``; ``quantile_0.5 = 0.5 x mae`` where the factor is not 1."""
    parts = []
    for m in comparison.merged[key]:
        factor = "" if math.isclose(m.factor, 1.0, rel_tol=1e-3) else f"{m.factor:.3g} x "
        parts.append(f"{m.key} = {factor}{key}")
    return "; ".join(parts)


def _named(comparison: Comparison, key: str) -> str:
    """``mae (l1_loss)``: the row and its catalog loss, where they differ."""
    loss = next(c.loss for c in comparison.candidates if c.key == key)
    return row_label(comparison, key) + ("" if loss == key else f" ({loss})")


def _metric(comparison: Comparison, key: str) -> Metric:
    return next(m for m in comparison.task.metrics if m.key == key)


def _group_text(comparison: Comparison, keys: tuple[str, ...] | list[str]) -> str:
    return ", ".join(row_label(comparison, k) for k in keys)


def verdict_text(comparison: Comparison, decision: MetricDecision) -> str:
    """One or two sentences on one metric: the winner, the top group, or why there is none."""
    metric = _metric(comparison, decision.metric)
    label = metric.label
    if decision.best is None:
        return f"{label}: no finished runs"
    n_seeds = decision.seeds
    if not decision.pairs:
        merged = comparison.merged.get(decision.best, [])
        if merged:
            names = [comparison.candidates[0].loss, *(m.loss for m in merged)]
            return (
                f"{label}: {' and '.join(names)} are the same loss on this task (values in a "
                "constant positive ratio, gradients in the same direction), so they were "
                "compared as one: there is nothing to decide"
            )
        return f"{label}: only one loss ({decision.best}) was compared"
    best = row_label(comparison, decision.best)
    if decision.too_few_seeds:
        return (
            f"{label}: cannot tell with {n_seeds} seed{'s' if n_seeds != 1 else ''}: the exact "
            f"paired test's smallest p is {min_p(n_seeds):.3g}, so separating "
            f"{len(decision.pairs) + 1} candidates at p <= {ALPHA:g} (Holm) needs at least "
            f"{decision.seeds_needed} seeds (--seeds {decision.seeds_needed}); best mean so far: "
            f"{best}"
        )
    runner = decision.pairs[0]
    digits = _digits(decision.means[decision.best])
    lo, hi = (fmt(v, digits) for v in runner.interval)
    diff = f"{_signed(runner.mean, digits)} [{lo}, {hi}]"
    ties = f", {runner.ties} tie{'s' if runner.ties != 1 else ''}" if runner.ties else ""
    if decision.winner is not None:
        worst_p = max(p.p_holm for p in decision.pairs)
        return (
            f"{label}: {best} wins: significantly better than every other candidate (paired over "
            f"{n_seeds} seeds, Holm p <= {worst_p:.3g}); ahead of the runner-up "
            f"{row_label(comparison, runner.other)} by {diff}, better on "
            f"{runner.wins}/{runner.seeds} seeds{ties}"
        )
    behind = (
        f"; clearly behind: {_group_text(comparison, decision.behind)}" if decision.behind else ""
    )
    start = row_label(comparison, decision.recommendation or decision.best)
    return (
        f"{label}: no single winner; top group (not significantly worse than the best, "
        f"{best}): {_group_text(comparison, decision.top_group)}: any of these, start with "
        f"{start} (the most familiar){behind}"
    )


def headline(comparison: Comparison) -> str:
    """The advice in one paragraph a newcomer can act on (primary metric first)."""
    ds = decisions(comparison)
    primary = ds[0]
    label = comparison.task.primary.label
    smoke = (
        f"Smoke run (--quick: {len(comparison.seeds)} seeds, models fully trained): it checks "
        "that every loss runs on this data and shows rough numbers; it is not a verdict. "
        if comparison.config.get("quick")
        else ""
    )
    seeds = len(comparison.seeds)
    design = (
        f"Each of the {seeds} seeds is one block (the same split, initial weights and batch "
        "order for every loss), and each loss is compared with the best seed by seed "
        "(exact sign-flip test, Holm's correction, p <= 0.05). "
    )
    if primary.best is None:
        advice = "No run finished, so there is nothing to recommend."
    elif not primary.pairs:
        advice = verdict_text(comparison, primary) + "."
    elif primary.too_few_seeds:
        advice = (
            f"On {label}, {seeds} seeds cannot separate the losses: rerun with --seeds "
            f"{primary.seeds_needed} or more for a verdict. The best mean so far is "
            f"{row_label(comparison, primary.best)}."
        )
    elif primary.winner is not None:
        pair = primary.pairs[0]
        digits = _digits(primary.means[primary.winner])
        advice = (
            f"Use {_named(comparison, primary.winner)}: on {label} it beat every other loss, "
            f"the runner-up {row_label(comparison, pair.other)} by {_signed(pair.mean, digits)} "
            f"on average (95 % interval {fmt(pair.interval[0], digits)} to "
            f"{fmt(pair.interval[1], digits)}), "
            f"better on {pair.wins} of {pair.seeds} seeds."
        )
    else:
        advice = (
            f"On {label}, {_group_text(comparison, primary.top_group)} are not significantly "
            f"different from the best ({row_label(comparison, primary.best)}): any of them will "
            f"do; start with {_named(comparison, primary.recommendation or primary.best)}, "
            "the most familiar."
            + (
                f" Avoid {_group_text(comparison, primary.behind)}: significantly worse."
                if primary.behind
                else ""
            )
        )
    merged = [_same_text(comparison, k) for k in comparison.merged]
    same = f" Same loss on this task's inputs, so run once: {'; '.join(merged)}." if merged else ""
    warnings = below_chance(comparison)
    tail = same
    if warnings:
        tail += (
            " Warning: "
            + ", ".join(sorted({w.candidate for w in warnings}))
            + " scored no better than chance on some metric (see the notes)."
        )
    return smoke + advice + (" " + design.rstrip() if primary.pairs else "") + tail


def verdict_lines(comparison: Comparison) -> list[str]:
    """One line per metric: the winner, the top group, or why there is none."""
    return [verdict_text(comparison, d) for d in decisions(comparison)]


def _ranked(comparison: Comparison, decision: MetricDecision) -> list[str]:
    """Candidate keys, best mean first (unfinished last)."""
    sign = 1.0 if decision.higher_is_better else -1.0
    order = {c.key: i for i, c in enumerate(comparison.candidates)}

    def key(name: str) -> tuple[bool, float, int]:
        mean = decision.means.get(name, math.nan)
        return (math.isnan(mean), 0.0 if math.isnan(mean) else -sign * mean, order[name])

    return sorted((c.key for c in comparison.candidates), key=key)


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "n/a"
    mean = statistics.fmean(finite)
    if len(finite) < 2:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(statistics.stdev(finite), _digits(mean))}"


def _digits(value: float) -> int:
    magnitude = math.floor(math.log10(abs(value))) if value else 0
    return min(3, max(0, 3 - magnitude))


def _versus(decision: MetricDecision, key: str) -> tuple[str, str, str]:
    """``(difference ± CI half-width, wins, Holm p)`` of a candidate against the best.

    The difference is the candidate's value minus the best's, as the metric reads (a worse
    candidate has a larger MAE: ``+``; a lower AP: ``-``); the t interval is symmetric.
    """
    if key == decision.best:
        return ("best", "", "")
    try:
        pair = decision.pair(key)
    except StopIteration:
        return ("", "", "")
    digits = _digits(decision.means[decision.best]) if decision.best else None
    diff = -pair.mean if decision.higher_is_better else pair.mean
    half = (pair.interval[1] - pair.interval[0]) / 2
    ci = "" if math.isnan(half) else f" ± {fmt(half, digits)}"
    ties = f" ({pair.ties} tied)" if pair.ties else ""
    return (
        f"{_signed(diff, digits)}{ci}",
        f"{pair.losses}/{pair.seeds}{ties}",
        f"{pair.p_holm:.2g}",
    )


def heading(comparison: Comparison) -> str:
    """What the table shows, in one line."""
    config = comparison.config
    return (
        f"{comparison.task.name}: {len(config['seeds'])} seeds x {config['epochs']} epochs, "
        f"test-split means; on {comparison.task.primary.label}: the paired difference from the "
        "best ± its 95 % interval, the seeds it beat the best on, the Holm-corrected p"
        + (" (smoke run)" if config.get("quick") else "")
    )


def rich_table(comparison: Comparison) -> Any:
    """The terminal table: mean ± std per metric; the primary metric's paired statistics."""
    from rich import box
    from rich.table import Table

    ds = decisions(comparison)
    primary = ds[0]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("loss", style="bold cyan", no_wrap=True)
    for metric in comparison.task.metrics:
        arrow = "↑" if metric.higher_is_better else "↓"
        table.add_column(f"{metric.label} {arrow}", justify="right")
    table.add_column("vs best", justify="right", no_wrap=True)
    table.add_column("wins", justify="right", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    tables = {m.key: comparison.table(m.key) for m in comparison.task.metrics}
    for key in _ranked(comparison, primary):
        cells = []
        for metric, decision in zip(comparison.task.metrics, ds, strict=True):
            finite = [v for v in tables[metric.key][key] if not math.isnan(v)]
            text = fmt(statistics.fmean(finite)) if finite else "n/a"
            if decision.winner == key:
                text = f"[bold green]{text} ★[/bold green]"
            elif key in decision.top_group and len(decision.top_group) > 1 and decision.pairs:
                text = f"[bold]{text}[/bold]"
            cells.append(text)
        table.add_row(row_label(comparison, key), *cells, *_versus(primary, key))
    return table


def _json_pair(decision: MetricDecision) -> list[dict[str, Any]]:
    return [
        {
            "other": p.other,
            "differences": list(p.differences),
            "mean_difference": p.mean,
            "ci95": list(p.interval),
            "p": p.p,
            "p_holm": p.p_holm,
            "wins": p.wins,
            "ties": p.ties,
            "losses": p.losses,
            "seeds": p.seeds,
            "significant": p.p_holm <= decision.alpha,
        }
        for p in decision.pairs
    ]


def _clean(value: Any) -> Any:
    """JSON-safe: ``nan`` and infinities become ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def report_dict(comparison: Comparison) -> dict[str, Any]:
    """The machine-readable report (what ``report.json`` holds)."""
    task = comparison.task
    ds = decisions(comparison)
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for metric in task.metrics:
        summary[metric.key] = {}
        for key, values in comparison.table(metric.key).items():
            finite = [v for v in values if not math.isnan(v)]
            summary[metric.key][key] = {
                "mean": statistics.fmean(finite) if finite else None,
                "std": statistics.stdev(finite) if len(finite) > 1 else None,
                "n": len(finite),
            }
    return {
        "task": {
            "name": task.name,
            "description": task.description,
            "kind": task.kind,
            "metrics": [
                {
                    "key": m.key,
                    "label": m.label,
                    "higher_is_better": m.higher_is_better,
                    "description": m.description,
                    "chance": comparison.chance(m.key),
                    "chance_is": m.chance_text or None,
                }
                for m in task.metrics
            ],
        },
        "config": comparison.config,
        "verdict": headline(comparison),
        "data": comparison.data,
        "describe": comparison.describe,
        "notes": comparison.notes,
        "warnings": [w.text for w in below_chance(comparison)],
        "candidates": [
            {
                "key": c.key,
                "loss": c.loss,
                "setting": c.setting,
                "why": c.why or None,
                "same_as": [
                    {"key": m.key, "loss": m.loss, "factor": m.factor}
                    for m in comparison.merged.get(c.key, [])
                ],
            }
            for c in comparison.candidates
        ],
        "skipped": comparison.skipped,
        "runs": comparison.runs,
        "summary": summary,
        "decisions": [
            {
                "metric": d.metric,
                "higher_is_better": d.higher_is_better,
                "test": d.test,
                "alpha": d.alpha,
                "interval": "95 % Student-t interval of the mean paired difference",
                "seeds": d.seeds,
                "seeds_needed": d.seeds_needed,
                "too_few_seeds": d.too_few_seeds,
                "per_seed": comparison.table(d.metric),
                "means": d.means,
                "mean_ranks": d.ranks,
                "best": d.best,
                "winner": d.winner,
                "top_group": list(d.top_group),
                "behind": list(d.behind),
                "recommendation": d.recommendation,
                "pairs": _json_pair(d),
                "verdict": verdict_text(comparison, d),
            }
            for d in ds
        ],
    }


def markdown(comparison: Comparison, images: dict[str, str]) -> str:
    """``report.md``."""
    ds = decisions(comparison)
    primary = ds[0]
    task, config = comparison.task, comparison.config
    lines = [
        f"# lossatlas compare: {task.name}",
        "",
        "**Verdict.** " + headline(comparison),
        "",
        f"{task.description}. Data: {comparison.data[0]['description']}.",
        "",
    ]
    if comparison.describe:
        lines += ["## Your data", ""]
        lines += [f"- {line}" for line in comparison.describe.get("lines", [])]
        lines += [""]
    lines += [
        f"{len(config['seeds'])} seeds x {config['epochs']} epochs, batch {config['batch_size']}, "
        f"{config['optimizer']}, device {config['device']}"
        + (", smoke run (--quick)" if config["quick"] else "")
        + ". Metrics on the test split, mean ± std over seeds. *vs best*: the paired difference "
        f"from the best on {task.primary.label} with its 95 % t interval; *wins*: seeds on which "
        "the loss beat the best; *p (Holm)*: the exact sign-flip test against the best, Holm-"
        "corrected. ★ a winner, **bold** the top group.",
        "",
        "| loss | catalog loss | setting | "
        + " | ".join(f"{m.label} {'↑' if m.higher_is_better else '↓'}" for m in task.metrics)
        + " | vs best | wins | p (Holm) |",
        "|---|---|---|" + "---:|" * (len(task.metrics) + 3),
    ]
    by_key = {c.key: c for c in comparison.candidates}
    tables = {m.key: comparison.table(m.key) for m in task.metrics}
    for key in _ranked(comparison, primary):
        cells = []
        for metric, decision in zip(task.metrics, ds, strict=True):
            text = _mean_std(tables[metric.key][key])
            if decision.winner == key:
                text = f"**{text}** ★"
            elif key in decision.top_group and len(decision.top_group) > 1 and decision.pairs:
                text = f"**{text}**"
            cells.append(text)
        cand = by_key[key]
        loss = " = ".join(
            f"`{n}`" for n in [cand.loss, *(m.loss for m in comparison.merged.get(key, []))]
        )
        lines.append(
            f"| {row_label(comparison, key)} | {loss} | {cand.setting} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(_versus(primary, key))
            + " |"
        )
    lines += ["", "Metrics (all on the test split):", ""]
    lines += [
        f"- {m.label}: {m.description}"
        + (
            f" (chance: {fmt(comparison.chance(m.key) or 0.0)}, {m.chance_text})"
            if m.chance
            else ""
        )
        for m in task.metrics
        if m.description
    ]
    lines += ["", "## Verdicts", ""]
    lines += [f"- {line}" for line in verdict_lines(comparison)]
    why = [c for c in comparison.candidates if c.why]
    if why:
        lines += ["", "## Why each loss is a candidate", ""]
        lines += [f"- {row_label(comparison, c.key)}: {c.why}" for c in why]
    warnings = below_chance(comparison)
    if comparison.skipped or comparison.notes or warnings:
        lines += ["", "## Notes", ""]
        lines += [f"- warning: {w.text}" for w in warnings]
        lines += [
            f"- skipped {s['candidate']} ({s['loss']}): {s['reason']}" for s in comparison.skipped
        ]
        lines += [f"- {note}" for note in comparison.notes]
    lines += ["", "## Plots", ""]
    if "metrics" in images:
        lines += [f"![metrics]({images['metrics']})", ""]
    for key in _ranked(comparison, primary):
        if key in images:
            lines += [f"![{key}]({images[key]})", ""]
    return "\n".join(lines)


def plot_curves(comparison: Comparison, key: str, path: Path) -> None:
    """Training loss per epoch of one candidate, one colour per seed, parts dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["--", ":", "-."]
    for i, run in enumerate(r for r in comparison.runs if r["candidate"] == key):
        color = colors[i % len(colors)]
        status = "" if run["status"] == "ok" else f" ({run['status']})"
        steps = list(range(1, len(run["epoch_loss"]) + 1))
        ax.plot(
            steps,
            run["epoch_loss"],
            color=color,
            linewidth=1.8,
            label=f"seed {run['seed']}{status}",
        )
        for j, (name, values) in enumerate(run["epoch_parts"].items()):
            ax.plot(
                steps,
                values,
                color=color,
                linestyle=styles[j % len(styles)],
                linewidth=1.0,
                label=f"seed {run['seed']}: {name}",
            )
    loss = next(c.loss for c in comparison.candidates if c.key == key)
    ax.set_title(f"{comparison.task.name}: {row_label(comparison, key)} ({loss})")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("training loss (epoch mean)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncols=2)
    fig.savefig(path)
    plt.close(fig)


def plot_metrics(comparison: Comparison, path: Path) -> None:
    """Per metric: mean ranks with the top group marked, and paired differences from the best.

    Top row (a critical-difference style plot): each candidate's rank averaged over the seeds
    (1 = best), green for a winner, blue for the top group (joined by a bar: not significantly
    different from the best), grey for those significantly behind. Bottom row: each
    candidate's shortfall from the best under every seed (dots; positive = worse than the best),
    their mean and 95 % t interval.
    """
    plt = pyplot()
    ds = decisions(comparison)
    metrics = comparison.task.metrics
    keys = _ranked(comparison, ds[0])
    rows = list(reversed(keys))
    fig, axes = plt.subplots(
        2,
        len(metrics),
        figsize=(3.4 * len(metrics) + 2.2, 0.62 * len(keys) + 3.6),
        dpi=100,
        layout="constrained",
        squeeze=False,
        sharey="row",
    )
    labels = [row_label(comparison, k) for k in rows]
    n = len(keys)
    for column, (metric, decision) in enumerate(zip(metrics, ds, strict=True)):
        ax, dx = axes[0][column], axes[1][column]
        for row, key in enumerate(rows):
            if decision.winner == key:
                color = "tab:green"
            elif key in decision.behind:
                color = "0.6"
            else:
                color = "tab:blue"
            rank = decision.ranks.get(key, math.nan)
            if not math.isnan(rank):
                ax.plot([rank], [row], "o", color=color, markersize=8)
                ax.annotate(
                    f"{rank:.2f}",
                    (rank, row),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize="x-small",
                    color=color,
                )
            if key != decision.best and decision.pairs:
                try:
                    pair = decision.pair(key)
                except StopIteration:
                    continue
                dx.scatter(pair.differences, [row] * pair.seeds, color=color, alpha=0.45, s=14)
                if not math.isnan(pair.interval[0]):
                    dx.errorbar(
                        pair.mean,
                        row,
                        xerr=[[pair.mean - pair.interval[0]], [pair.interval[1] - pair.mean]],
                        fmt="D",
                        color=color,
                        capsize=4,
                        markersize=5,
                    )
            elif key == decision.best and decision.pairs:
                dx.plot([0.0], [row], "D", color=color, markersize=5)
                dx.annotate(
                    "best",
                    (0.0, row),
                    textcoords="offset points",
                    xytext=(6, -3),
                    fontsize="small",
                    color=color,
                )
        # the top group joined on the rank axis, as in a critical-difference diagram
        group = [decision.ranks[k] for k in decision.top_group if not math.isnan(decision.ranks[k])]
        if len(group) > 1 and decision.pairs and not decision.too_few_seeds:
            y = len(rows) - 0.35
            ax.plot(
                [min(group), max(group)],
                [y, y],
                color="tab:blue",
                linewidth=4,
                solid_capstyle="round",
                alpha=0.6,
            )
            ax.annotate(
                "top group",
                (max(group), y),
                textcoords="offset points",
                xytext=(6, -3),
                fontsize="x-small",
                color="tab:blue",
            )
        ax.set_xlim(0.5, n + 0.5)
        ax.set_xticks(range(1, n + 1))
        ax.set_xlabel("mean rank over seeds (1 = best)")
        if decision.winner:
            title = f"{metric.label}: {row_label(comparison, decision.winner)} wins"
        elif decision.too_few_seeds:
            title = f"{metric.label}: too few seeds to tell"
        elif not decision.pairs:
            title = f"{metric.label}: one candidate"
        else:
            title = f"{metric.label}: top group of {len(decision.top_group)}"
        ax.set_title(title, fontsize="medium")
        ax.grid(True, axis="x", alpha=0.3)
        dx.axvline(0.0, color="black", linewidth=0.8)
        dx.set_xlabel(f"how far behind the best on {metric.label}\n(per seed; 0 = as good)")
        dx.grid(True, axis="x", alpha=0.3)
    for row_axes in axes:
        row_axes[0].set_yticks(range(len(rows)), labels)
    axes[0][0].set_ylim(-0.6, len(rows) - 0.1)
    axes[1][0].set_ylim(-0.6, len(rows) - 0.4)
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color="tab:green", label="winner"),
        plt.Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color="tab:blue",
            label="top group (not significantly worse than the best)",
        ),
        plt.Line2D(
            [], [], marker="o", linestyle="", color="0.6", label="significantly behind the best"
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    fig.suptitle(
        f"lossatlas compare: {comparison.task.name} ({len(comparison.seeds)} seeds, paired; "
        "exact sign-flip test, Holm)" + (" -- smoke run" if comparison.config.get("quick") else "")
    )
    fig.savefig(path)
    plt.close(fig)


def _file_name(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key) + ".png"


def write_report(comparison: Comparison, out_dir: str | Path) -> Path:
    """Write ``report.json``, ``report.md``, ``report.html`` and the PNGs to ``out_dir``."""
    out = Path(out_dir)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    if comparison.candidates:
        plot_metrics(comparison, out / "metrics.png")
        images["metrics"] = "metrics.png"
    for candidate in comparison.candidates:
        name = f"curves/{_file_name(candidate.key)}"
        plot_curves(comparison, candidate.key, out / name)
        images[candidate.key] = name
    payload = {"complete": True, **report_dict(comparison)}
    payload["files"] = {"markdown": "report.md", "html": "report.html", **images}
    (out / "report.md").write_text(markdown(comparison, images) + "\n", encoding="utf-8")
    write_page(comparison_page(comparison, out, images), out / "report.html")
    # report.json last, whole (a temporary file renamed): "complete" means everything is there
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(_clean(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(out / "report.json")
    return out

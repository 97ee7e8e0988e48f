"""Reports of ``lossatlas compare``: the table, the verdicts, JSON, Markdown and plots.

For each metric the candidates are summarised by the mean and the sample standard deviation
(``ddof=1``) over the seeds. A **winner** is named only when the best candidate's interval
``mean ± std`` does not overlap the runner-up's; otherwise the verdict is "no clear winner".
With a single seed there is no spread, so no winner is ever named.

Files written to the output directory:

* ``report.json`` -- the config, the data of each seed, every run (metrics and per-epoch loss
  and parts), the summary and the verdicts;
* ``report.md`` -- the table and verdicts in Markdown, linking the plots;
* ``curves/<candidate>.png`` -- training loss per epoch for every seed (parts dashed);
* ``metrics.png`` -- each metric's per-seed values, mean and ``± std`` per candidate.
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
from lossatlas.lab.tasks import Metric

__all__ = ["Stat", "Verdict", "pick_winner", "summarize", "write_report"]


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of a metric over seeds."""

    mean: float
    std: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        """The statistic of some values (``std`` is ``nan`` for fewer than two)."""
        finite = [v for v in values if not math.isnan(v)]
        mean = statistics.fmean(finite) if finite else math.nan
        std = statistics.stdev(finite) if len(finite) > 1 else math.nan
        return cls(mean, std, tuple(values))

    @property
    def n(self) -> int:
        """Number of seeds that gave a value."""
        return sum(not math.isnan(v) for v in self.values)

    def interval(self) -> tuple[float, float]:
        """``(mean - std, mean + std)``."""
        return self.mean - self.std, self.mean + self.std

    def text(self, digits: int | None = None) -> str:
        """``0.952 ± 0.012`` (just the mean for one seed).

        Args:
            digits: Decimals; default about four significant digits of the mean, at most 3
                decimals (``48.65 ± 1.25``, ``175991 ± 54334``).
        """
        if math.isnan(self.mean):
            return "n/a"
        if digits is None:
            magnitude = math.floor(math.log10(abs(self.mean))) if self.mean else 0
            digits = min(3, max(0, 3 - magnitude))
        if math.isnan(self.std):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass(frozen=True)
class Verdict:
    """The outcome for one metric.

    Attributes:
        metric: The metric's key.
        winner: The clear winner, or ``None``.
        best: The candidate with the best mean (``None`` if there is none).
        runner_up: The second best (``None`` with one candidate).
        reason: One sentence, for the report.
        behind: The candidates the best clearly beats (disjoint intervals).
    """

    metric: str
    winner: str | None
    best: str | None
    runner_up: str | None
    reason: str
    behind: tuple[str, ...] = ()


def separated(a: Stat, b: Stat, metric: Metric) -> bool:
    """Whether ``a`` is better than ``b`` with disjoint ``mean ± std`` intervals (2+ seeds each).

    Touching intervals count as overlapping.
    """
    if a.n < 2 or b.n < 2:
        return False
    if metric.higher_is_better:
        return a.interval()[0] > b.interval()[1]
    return a.interval()[1] < b.interval()[0]


def pick_winner(stats: dict[str, Stat], metric: Metric) -> Verdict:
    """Name the winner of one metric only where the spread allows it.

    The candidates are ranked by mean (higher or lower is better as the metric says). The best
    wins when both it and the runner-up have at least two seeds and their ``mean ± std``
    intervals do not overlap (touching counts as overlap). Whatever the outcome, the verdict
    also lists the candidates the best clearly beats (``behind``).

    Args:
        stats: Candidate key -> its :class:`Stat` for this metric.
        metric: The metric (its direction).

    Returns:
        The :class:`Verdict`.

    Example:
        >>> from lossatlas.lab.report import Stat, pick_winner
        >>> from lossatlas.lab.tasks import Metric
        >>> mae = Metric("mae", "MAE", higher_is_better=False)
        >>> pick_winner({"mse": Stat.of([80, 84, 88]), "huber": Stat.of([50, 52, 54])}, mae).winner
        'huber'
        >>> pick_winner({"mse": Stat.of([50, 60, 70]), "huber": Stat.of([52, 55, 58])}, mae).winner
    """
    ranked = sorted(
        (key for key, stat in stats.items() if not math.isnan(stat.mean)),
        key=lambda key: stats[key].mean,
        reverse=metric.higher_is_better,
    )
    if not ranked:
        return Verdict(metric.key, None, None, None, "no finished runs")
    best = ranked[0]
    if len(ranked) == 1:
        return Verdict(metric.key, None, best, None, f"only one loss ({best}) was compared")
    runner = ranked[1]
    b, r = stats[best], stats[runner]
    behind = tuple(k for k in ranked[1:] if separated(b, stats[k], metric))
    tail = f"; clearly behind {best}: {', '.join(behind)}" if behind else ""
    pair = f"{best} {b.text()} vs {runner} {r.text()}"
    if b.n < 2 or r.n < 2:
        reason = f"no clear winner: one seed gives no spread ({pair})"
        return Verdict(metric.key, None, best, runner, reason)
    if separated(b, r, metric):
        reason = f"{best} wins: its mean ± std does not overlap the runner-up's ({pair}){tail}"
        return Verdict(metric.key, best, best, runner, reason, behind)
    tied = [k for k in ranked if k not in behind]
    reason = f"no clear winner: {', '.join(tied)} overlap the best within one std ({pair}){tail}"
    return Verdict(metric.key, None, best, runner, reason, behind)


def summarize(comparison: Comparison) -> dict[str, dict[str, Stat]]:
    """Metric key -> candidate key -> :class:`Stat` over the seeds that finished."""
    out: dict[str, dict[str, Stat]] = {}
    for metric in comparison.task.metrics:
        out[metric.key] = {}
        for candidate in comparison.candidates:
            runs = comparison.results(candidate.key)
            out[metric.key][candidate.key] = Stat.of(
                [r.metrics.get(metric.key, math.nan) for r in runs]
            )
    return out


def verdicts(comparison: Comparison, summary: dict[str, dict[str, Stat]]) -> list[Verdict]:
    """The verdict of every metric of the task, in the task's order."""
    return [pick_winner(summary[m.key], m) for m in comparison.task.metrics]


def ranked_candidates(comparison: Comparison, summary: dict[str, dict[str, Stat]]) -> list[str]:
    """Candidate keys, best first by the task's primary metric (unfinished last)."""
    primary = comparison.task.primary
    stats = summary[primary.key]

    def key(name: str) -> tuple[bool, float]:
        mean = stats[name].mean
        if math.isnan(mean):
            return (True, 0.0)
        return (False, -mean if primary.higher_is_better else mean)

    return sorted((c.key for c in comparison.candidates), key=key)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


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
    summary = summarize(comparison)
    task = comparison.task
    return {
        "task": {
            "name": task.name,
            "description": task.description,
            "metrics": [
                {"key": m.key, "label": m.label, "higher_is_better": m.higher_is_better}
                for m in task.metrics
            ],
        },
        "config": comparison.config,
        "data": comparison.data,
        "notes": comparison.notes,
        "candidates": [
            {"key": c.key, "loss": c.loss, "setting": c.setting} for c in comparison.candidates
        ],
        "skipped": comparison.skipped,
        "runs": [
            {
                "candidate": run.candidate,
                "loss": run.loss,
                "seed": run.seed,
                "status": run.status,
                "message": run.message,
                "seconds": round(run.seconds, 3),
                "metrics": run.metrics,
                "epoch_loss": run.history.totals,
                "epoch_parts": {name: run.history.part(name) for name in run.history.part_names},
            }
            for run in comparison.runs
        ],
        "summary": {
            metric: {
                key: {"mean": _json_number(s.mean), "std": _json_number(s.std), "n": s.n}
                for key, s in stats.items()
            }
            for metric, stats in summary.items()
        },
        "verdicts": [
            {
                "metric": v.metric,
                "winner": v.winner,
                "best": v.best,
                "runner_up": v.runner_up,
                "behind": list(v.behind),
                "reason": v.reason,
            }
            for v in verdicts(comparison, summary)
        ],
    }


def heading(comparison: Comparison) -> str:
    """What the table shows, in one line."""
    config = comparison.config
    return (
        f"{comparison.task.name}: {len(config['seeds'])} seeds x {config['epochs']} epochs, "
        "test split, mean ± std (★ clear winner, bold: best mean)"
    )


def rich_table(comparison: Comparison) -> Any:
    """The terminal table: mean ± std per metric, the best bold, a clear winner starred."""
    from rich.table import Table

    summary = summarize(comparison)
    outcome = {v.metric: v for v in verdicts(comparison, summary)}
    task = comparison.task
    table = Table()
    table.add_column("loss", style="bold cyan", no_wrap=True)
    for metric in task.metrics:
        arrow = "↑" if metric.higher_is_better else "↓"
        table.add_column(f"{metric.label} {arrow}", justify="right", no_wrap=True)
    for key in ranked_candidates(comparison, summary):
        cells = []
        for metric in task.metrics:
            stat = summary[metric.key][key]
            text = stat.text()
            verdict = outcome[metric.key]
            if verdict.winner == key:
                text = f"[bold green]{text} ★[/bold green]"
            elif verdict.best == key:
                text = f"[bold]{text}[/bold]"
            cells.append(text)
        table.add_row(key, *cells)
    return table


def verdict_lines(comparison: Comparison) -> list[str]:
    """One line per metric: the winner, or why there is none."""
    summary = summarize(comparison)
    labels = {m.key: m.label for m in comparison.task.metrics}
    return [f"{labels[v.metric]}: {v.reason}" for v in verdicts(comparison, summary)]


def markdown(comparison: Comparison, images: dict[str, str]) -> str:
    """``report.md``."""
    summary = summarize(comparison)
    outcome = {v.metric: v for v in verdicts(comparison, summary)}
    task, config = comparison.task, comparison.config
    lines = [
        f"# lossatlas compare: {task.name}",
        "",
        f"{task.description}. Data: {comparison.data[0]['description']}.",
        "",
        f"{len(config['seeds'])} seeds x {config['epochs']} epochs, batch {config['batch_size']}, "
        f"{config['optimizer']}, device {config['device']}"
        + (", quick mode" if config["quick"] else "")
        + ". Metrics on the test split, mean ± std over seeds; ★ marks a winner whose "
        "mean ± std does not overlap the runner-up's, **bold** the best mean otherwise.",
        "",
        "| loss | catalog loss | setting | "
        + " | ".join(f"{m.label} {'↑' if m.higher_is_better else '↓'}" for m in task.metrics)
        + " |",
        "|---|---|---|" + "---:|" * len(task.metrics),
    ]
    by_key = {c.key: c for c in comparison.candidates}
    for key in ranked_candidates(comparison, summary):
        cells = []
        for metric in task.metrics:
            text = summary[metric.key][key].text()
            verdict = outcome[metric.key]
            if verdict.winner == key:
                text = f"**{text}** ★"
            elif verdict.best == key:
                text = f"**{text}**"
            cells.append(text)
        cand = by_key[key]
        lines.append(f"| {key} | `{cand.loss}` | {cand.setting} | " + " | ".join(cells) + " |")
    lines += ["", "Metrics (all on the test split):", ""]
    lines += [f"- {m.label}: {m.description}" for m in task.metrics if m.description]
    lines += ["", "## Verdicts", ""]
    lines += [f"- {line}" for line in verdict_lines(comparison)]
    if comparison.skipped or comparison.notes:
        lines += ["", "## Notes", ""]
        lines += [
            f"- skipped {s['candidate']} ({s['loss']}): {s['reason']}" for s in comparison.skipped
        ]
        lines += [f"- {note}" for note in comparison.notes]
    lines += ["", "## Plots", ""]
    if "metrics" in images:
        lines += [f"![metrics]({images['metrics']})", ""]
    for key in ranked_candidates(comparison, summary):
        if key in images:
            lines += [f"![{key}]({images[key]})", ""]
    return "\n".join(lines)


def plot_curves(comparison: Comparison, key: str, path: Path) -> None:
    """Training loss per epoch of one candidate, one colour per seed, parts dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["--", ":", "-."]
    for i, run in enumerate(r for r in comparison.runs if r.candidate == key):
        color = colors[i % len(colors)]
        status = "" if run.status == "ok" else f" ({run.status})"
        ax.plot(
            run.history.steps,
            run.history.totals,
            color=color,
            linewidth=1.8,
            label=f"seed {run.seed}{status}",
        )
        for j, name in enumerate(run.history.part_names):
            ax.plot(
                run.history.steps,
                run.history.part(name),
                color=color,
                linestyle=styles[j % len(styles)],
                linewidth=1.0,
                label=f"seed {run.seed}: {name}",
            )
    loss = next(c.loss for c in comparison.candidates if c.key == key)
    ax.set_title(f"{comparison.task.name}: {key} ({loss})")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("training loss (epoch mean)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path)
    plt.close(fig)


def plot_metrics(comparison: Comparison, path: Path) -> None:
    """One panel per metric: each seed's value and the mean ``± std`` of each candidate.

    Green: the clear winner; blue: the best and those whose interval overlaps it; grey: those
    the best clearly beats.
    """
    plt = pyplot()
    summary = summarize(comparison)
    outcome = {v.metric: v for v in verdicts(comparison, summary)}
    keys = ranked_candidates(comparison, summary)
    metrics = comparison.task.metrics
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.2 * len(metrics) + 1.8, 0.42 * len(keys) + 1.9),
        dpi=100,
        layout="constrained",
        squeeze=False,
        sharey=True,
    )
    rows = list(reversed(keys))
    for ax, metric in zip(axes[0], metrics, strict=True):
        verdict = outcome[metric.key]
        for row, key in enumerate(rows):
            stat = summary[metric.key][key]
            if verdict.winner == key:
                color, group = "tab:green", "clear winner"
            elif key in verdict.behind:
                color, group = "0.55", "clearly behind the best"
            else:
                color, group = "tab:blue", "best, or overlaps it"
            values = [v for v in stat.values if not math.isnan(v)]
            ax.scatter(values, [row] * len(values), color=color, alpha=0.4, s=16)
            if not math.isnan(stat.mean):
                ax.errorbar(
                    stat.mean,
                    row,
                    xerr=0.0 if math.isnan(stat.std) else stat.std,
                    fmt="D",
                    color=color,
                    capsize=4,
                    markersize=6,
                    label=group,
                )
        arrow = "higher is better" if metric.higher_is_better else "lower is better"
        ax.set_xlabel(f"{metric.label}\n({arrow})")
        won = verdict.winner
        ax.set_title(f"{won} wins" if won else "no clear winner", fontsize="medium")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(rows)), rows)
    handles, labels = [], []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=len(labels),
        fontsize="small",
        title="mean ± std (dots: seeds)",
        title_fontsize="small",
    )
    fig.suptitle(
        f"lossatlas compare: {comparison.task.name} (test split, "
        f"{len(comparison.config['seeds'])} seeds)"
    )
    fig.savefig(path)
    plt.close(fig)


def _file_name(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key) + ".png"


def write_report(comparison: Comparison, out_dir: str | Path) -> Path:
    """Write ``report.json``, ``report.md`` and the PNGs to ``out_dir``; return its path."""
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
    payload = report_dict(comparison)
    payload["files"] = {"markdown": "report.md", **images}
    (out / "report.json").write_text(
        json.dumps(_clean(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(markdown(comparison, images) + "\n", encoding="utf-8")
    return out

"""``lossatlas compare``: each task end to end, the winner rule, CSV input and its errors."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import struct

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import lossatlas as la
from lossatlas.cli import main
from lossatlas.lab import data as lab_data
from lossatlas.lab.compare import run_comparison
from lossatlas.lab.report import Stat, pick_winner, summarize, verdicts
from lossatlas.lab.tasks import TASKS, Candidate, Metric, plain, recall_at_1, segmentation_scores

pytest.importorskip("sklearn", reason="compare's embedded data and metrics need scikit-learn")
pytest.importorskip("matplotlib", reason="compare's report plots need matplotlib")


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def run_cli(*args: str):
    result = CliRunner().invoke(main, ["compare", *args])
    return result


def check_report(out, task_name: str, seeds: int) -> dict:
    """The report directory holds a consistent report.json, report.md and PNGs."""
    task = TASKS[task_name]
    report = json.loads((out / "report.json").read_text())
    assert report["task"]["name"] == task_name
    assert report["config"]["seeds"] == list(range(seeds))
    keys = report["config"]["losses"]
    assert keys, "no loss was compared"
    metric_keys = [m.key for m in task.metrics]
    assert [m["key"] for m in report["task"]["metrics"]] == metric_keys
    assert len(report["runs"]) == len(keys) * seeds
    for run in report["runs"]:
        assert run["candidate"] in keys
        assert len(run["epoch_loss"]) == report["config"]["epochs"] or run["status"] != "ok"
        if run["status"] == "ok":
            assert set(run["metrics"]) == set(metric_keys)
    for metric in metric_keys:
        assert set(report["summary"][metric]) == set(keys)
        for key in keys:  # the summary is the mean and sample std of the runs
            values = [
                r["metrics"][metric]
                for r in report["runs"]
                if r["candidate"] == key and r["status"] == "ok"
            ]
            finite = [v for v in values if v is not None]
            if finite:
                assert report["summary"][metric][key]["mean"] == pytest.approx(
                    statistics.fmean(finite)
                )
            if len(finite) > 1:
                assert report["summary"][metric][key]["std"] == pytest.approx(
                    statistics.stdev(finite)
                )
    assert [v["metric"] for v in report["verdicts"]] == metric_keys
    md = (out / "report.md").read_text()
    assert md.startswith(f"# lossatlas compare: {task_name}")
    assert is_png(out / "metrics.png")
    for key in keys:
        assert is_png(out / report["files"][key])
        assert f"| {key} |" in md
    return report


# --------------------------------------------------------------------------- winner rule

LOWER = Metric("mae", "MAE", higher_is_better=False)
HIGHER = Metric("ap", "AP", higher_is_better=True)


def test_stat_is_mean_and_sample_std():
    stat = Stat.of([1.0, 2.0, 4.0])
    assert stat.mean == pytest.approx(np.mean([1, 2, 4]))
    assert stat.std == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert stat.text(2) == f"2.33 ± {np.std([1, 2, 4], ddof=1):.2f}"
    assert math.isnan(Stat.of([3.0]).std) and Stat.of([3.0]).text() == "3.000"


def test_clear_winner_when_intervals_do_not_overlap():
    # huber 52 ± 2 = [50, 54]; mse 84 ± 4 = [80, 88]: disjoint, lower is better
    verdict = pick_winner({"mse": Stat.of([80, 84, 88]), "huber": Stat.of([50, 52, 54])}, LOWER)
    assert verdict.winner == "huber" and verdict.runner_up == "mse"
    assert verdict.behind == ("mse",)
    assert "huber wins" in verdict.reason
    # the same numbers where higher is better: mse wins
    assert (
        pick_winner({"mse": Stat.of([80, 84, 88]), "huber": Stat.of([50, 52, 54])}, HIGHER).winner
        == "mse"
    )


def test_no_winner_when_intervals_overlap():
    # best 0.9 ± 0.1 = [0.8, 1.0]; runner-up 0.85 ± 0.05 = [0.8, 0.9]: overlap
    stats = {
        "a": Stat.of([0.8, 0.9, 1.0]),
        "b": Stat.of([0.8, 0.85, 0.9]),
        "c": Stat.of([0.1, 0.2, 0.3]),
    }
    verdict = pick_winner(stats, HIGHER)
    assert verdict.winner is None and verdict.best == "a" and verdict.runner_up == "b"
    assert verdict.behind == ("c",)
    assert verdict.reason.startswith("no clear winner: a, b overlap the best")
    assert "clearly behind a: c" in verdict.reason


def test_touching_intervals_count_as_overlap():
    # [1, 3] and [3, 5] touch at 3
    verdict = pick_winner({"a": Stat.of([3.0, 4.0, 5.0]), "b": Stat.of([1.0, 2.0, 3.0])}, HIGHER)
    assert verdict.winner is None


def test_one_seed_never_names_a_winner():
    verdict = pick_winner({"a": Stat.of([0.9]), "b": Stat.of([0.1])}, HIGHER)
    assert verdict.winner is None and "one seed" in verdict.reason


def test_single_candidate_and_no_runs():
    assert pick_winner({"a": Stat.of([1.0, 2.0])}, HIGHER).winner is None
    assert pick_winner({"a": Stat.of([math.nan])}, HIGHER).reason == "no finished runs"


# --------------------------------------------------------------------------- metrics


def test_segmentation_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics", reason="reference metrics")
    generator = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 3, (4, 8, 8), generator=generator)
    target = torch.randint(0, 3, (4, 8, 8), generator=generator)
    scores = segmentation_scores(pred, target, 3)
    y, p = target.flatten().numpy(), pred.flatten().numpy()
    iou = metrics.jaccard_score(y, p, labels=[1, 2], average="macro")
    dice = metrics.f1_score(y, p, labels=[1, 2], average="macro")  # Dice = F1 per class
    assert scores["mean_iou"] == pytest.approx(iou)
    assert scores["dice"] == pytest.approx(dice)


def test_recall_at_1_by_hand():
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.2]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # cosines worked by hand: cos(1, 0) = 0.994 > cos(1, 4) = 0.991, cos(4, 1) = 0.991 >
    # cos(4, 0) = 0.970; so 0->1, 1->0, 2->3, 3->2 are right and 4->1 is wrong: 4 of 5
    assert recall_at_1(emb, labels) == pytest.approx(4 / 5)


# --------------------------------------------------------------------------- tasks end to end

QUICK_SEEDS = 2


@pytest.mark.parametrize("task_name", list(TASKS))
def test_quick_task_end_to_end(task_name, tmp_path):
    out = tmp_path / "report"
    result = run_cli("--task", task_name, "--quick", "--seeds", str(QUICK_SEEDS), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Report:" in result.output and str(out.resolve()) in result.output.replace("\n", "")
    check_report(out, task_name, QUICK_SEEDS)


def test_runs_are_deterministic_for_a_seed():
    task = TASKS["regression-outliers"]
    first = run_comparison(task, losses=["mse", "huber"], seeds=1, quick=True)
    second = run_comparison(task, losses=["mse", "huber"], seeds=1, quick=True)
    assert [r.metrics for r in first.runs] == [r.metrics for r in second.runs]
    assert [r.history.totals for r in first.runs] == [r.history.totals for r in second.runs]


def test_missing_catalog_losses_are_skipped_with_a_note(tmp_path):
    task = TASKS["regression-outliers"]
    ghost = Candidate("ghost", "no_such_loss_in_the_catalog", plain)
    task = dataclasses.replace(task, candidates=(task.candidates[0], ghost))
    comparison = run_comparison(task, seeds=1, quick=True)
    assert [c.key for c in comparison.candidates] == ["mse"]
    assert comparison.skipped == [
        {
            "candidate": "ghost",
            "loss": "no_such_loss_in_the_catalog",
            "reason": "no_such_loss_in_the_catalog is not in this version's catalog",
        }
    ]


def test_any_catalog_loss_of_the_task_and_a_registered_one_can_be_compared(tmp_path):
    @la.register(
        tasks=("regression",),
        input_kind="predictions",
        target_kind="real values",
        formula=r"|\hat y - y|^3",
    )
    def cubic_loss(input, target, *, reduction="mean"):
        return la.reduce_loss((input - target).abs() ** 3, reduction)

    try:
        out = tmp_path / "r"
        result = run_cli(
            "--quick", "--seeds", "2", "--losses", "mse,rmse_loss,cubic_loss", "--out", str(out)
        )
        assert result.exit_code == 0, result.output
        report = check_report(out, "regression-outliers", 2)
        assert report["config"]["losses"] == ["mse", "rmse_loss", "cubic_loss"]
    finally:
        la.unregister("cubic_loss")


def test_bad_loss_names_and_options():
    result = run_cli("--quick", "--losses", "mse,hubr")
    assert result.exit_code == 1
    assert "'hubr' is neither a candidate of regression-outliers" in result.output
    result = run_cli("--quick", "--losses", "cross_entropy")
    assert result.exit_code == 1
    assert "compares regression losses" in result.output
    assert run_cli("--seeds", "0").exit_code == 2
    result = run_cli("--quick", "--device", "banana")
    assert result.exit_code == 2 and "not a torch device" in result.output
    result = run_cli("--task", "nope")
    assert result.exit_code == 2 and "regression-outliers" in result.output


# --------------------------------------------------------------------------- CSV input


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def blobs(n=90, seed=0, classes=("no", "yes")):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        shift = classes.index(label)
        rows.append([round(rng.normal(shift, 1.0), 4), round(rng.normal(-shift, 1.0), 4), label])
    return rows


def test_csv_binary_inferred_end_to_end(tmp_path):
    csv = write_csv(tmp_path / "churn.csv", ["a", "b", "churn"], blobs())
    out = tmp_path / "r"
    result = run_cli(
        "--data", str(csv), "--target", "churn", "--quick", "--seeds", "2", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "task inferred from the target 'churn': binary" in result.output
    report = check_report(out, "binary-imbalanced", 2)
    assert report["data"][0]["name"] == "churn.csv"
    assert report["data"][0]["train"] + report["data"][0]["val"] + report["data"][0]["test"] == 90
    assert "positive class: churn = 'yes'" in report["notes"]


def test_csv_regression_and_multiclass(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)
    csv = write_csv(
        tmp_path / "reg.csv",
        ["x1", "x2", "x3", "y"],
        [[*map(float, row), float(t)] for row, t in zip(x, y, strict=True)],
    )
    table = lab_data.load_csv(csv, "y")
    assert table.kind == "regression"
    result = run_cli(
        "--data",
        str(csv),
        "--target",
        "y",
        "--quick",
        "--seeds",
        "2",
        "--losses",
        "mse,huber",
        "--out",
        str(tmp_path / "r"),
    )
    assert result.exit_code == 0, result.output
    three = write_csv(
        tmp_path / "three.csv", ["a", "b", "kind"], blobs(90, classes=("x", "y", "z"))
    )
    table = lab_data.load_csv(three, "kind")
    assert table.kind == "multiclass" and table.class_names == ["x", "y", "z"]
    result = run_cli(
        "--data",
        str(three),
        "--target",
        "kind",
        "--quick",
        "--seeds",
        "2",
        "--losses",
        "ce,focal",
        "--out",
        str(tmp_path / "m"),
    )
    assert result.exit_code == 0, result.output
    check_report(tmp_path / "m", "multiclass-longtail", 2)


@pytest.mark.parametrize(
    ("header", "rows", "target", "message"),
    [
        (None, None, "y", "data file '.*missing.csv' does not exist"),
        (
            ["a", "b", "label"],
            blobs(12),
            "lable",
            "target column 'lable' is not in bad.csv; its columns are: a, b, label"
            ".*(?i:did you mean)",
        ),
        (
            ["a", "color", "y"],
            [[1, "red", 0], [2, "blue", 1]] * 6,
            "y",
            "feature column 'color' is not numeric \\(value 'red' in data row 1\\)",
        ),
        (
            ["a", "y"],
            [[i, 1] for i in range(10)],
            "y",
            "target column 'y' has a single value \\('1'\\) in every row; "
            "there is nothing to learn",
        ),
        (
            ["a", "y"],
            [["nan", 1], ["", 0]],
            "y",
            "no rows of bad.csv are left after dropping rows with NaN cells",
        ),
        (["y"], [[0], [1]], "y", "bad.csv has no feature columns besides the target 'y'"),
        (["a", "y"], [[1, 0], [2, 1], [3, 0], [4, 0]], "y", "class '1' has only 1 row"),
    ],
)
def test_csv_errors(tmp_path, header, rows, target, message):
    if header is None:
        path = tmp_path / "missing.csv"
    else:
        path = write_csv(tmp_path / "bad.csv", header, rows)
    # the CLI turns the loader's warnings into printed notes, so none escapes here
    result = run_cli(
        "--data",
        str(path),
        "--target",
        target,
        "--quick",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "r"),
    )
    assert result.exit_code == 1, result.output
    assert re.search(message, result.output.replace("\n", " ")), result.output


def test_csv_rows_with_nan_are_dropped_with_a_warning(tmp_path):
    rows = blobs(60)
    rows[3][0] = "nan"
    rows[7][1] = ""
    csv = write_csv(tmp_path / "holes.csv", ["a", "b", "y"], rows)
    with pytest.warns(UserWarning, match="dropped 2 of 60 rows of holes.csv"):
        table = lab_data.load_csv(csv, "y")
    assert len(table.target) == 58
    result = run_cli(
        "--data",
        str(csv),
        "--target",
        "y",
        "--quick",
        "--seeds",
        "2",
        "--losses",
        "bce",
        "--out",
        str(tmp_path / "r"),
    )
    assert result.exit_code == 0, result.output
    assert "dropped 2 of 60 rows of holes.csv" in result.output.replace("\n", " ")


def test_csv_usage_errors(tmp_path):
    csv = write_csv(tmp_path / "d.csv", ["a", "b", "y"], blobs(30))
    result = run_cli("--data", str(csv))
    assert result.exit_code == 2 and "--data needs --target COLUMN" in result.output
    result = run_cli("--target", "y")
    assert result.exit_code == 2 and "give --data too" in result.output
    result = run_cli("--data", str(csv), "--target", "y", "--task", "segmentation")
    assert result.exit_code == 2 and "--data works with the tabular tasks" in result.output
    three = write_csv(tmp_path / "t.csv", ["a", "b", "k"], blobs(30, classes=("x", "y", "z")))
    result = run_cli("--data", str(three), "--target", "k", "--task", "binary-imbalanced")
    assert result.exit_code == 1
    assert "a binary task needs a target with exactly two classes; 'k' has 3" in result.output
    result = run_cli("--data", str(three), "--target", "k", "--task", "regression-outliers")
    assert result.exit_code == 1 and "'k' is not numeric" in result.output


# --------------------------------------------------------------------------- the claims


@pytest.mark.slow
def test_robust_losses_beat_mse_on_regression_outliers():
    """The claim in the README and the demo, measured: every robust loss has a lower test MAE
    than MSE at the default settings, and the report's verdict puts MSE clearly behind."""
    comparison = run_comparison(TASKS["regression-outliers"], seeds=3)
    summary = summarize(comparison)
    mae = summary["mae"]
    for key in mae:
        if key != "mse":
            assert mae[key].mean < mae["mse"].mean, (key, mae[key], mae["mse"])
    verdict = next(v for v in verdicts(comparison, summary) if v.metric == "mae")
    assert "mse" in verdict.behind


@pytest.mark.slow
def test_binary_imbalanced_report_is_honest():
    """An imbalance-aware loss beats plain BCE on average precision, or the report says no
    clear winner; either way the verdict follows from the numbers."""
    comparison = run_comparison(TASKS["binary-imbalanced"], seeds=3)
    summary = summarize(comparison)
    ap = summary["average_precision"]
    verdict = next(v for v in verdicts(comparison, summary) if v.metric == "average_precision")
    aware_beats_bce = any(ap[k].mean > ap["bce"].mean for k in ap if k != "bce")
    assert aware_beats_bce or verdict.winner is None


def test_margin_losses_get_sign_labels_and_metrics_are_refused(tmp_path):
    # logistic_loss log(1 + exp(-y f)) with y = 2t - 1 is BCE with logits: identical runs
    comparison = run_comparison(
        TASKS["binary-imbalanced"], losses=["bce", "logistic_loss"], seeds=1, quick=True
    )
    bce, logistic = comparison.runs
    assert logistic.metrics == pytest.approx(bce.metrics)
    assert logistic.history.totals == pytest.approx(bce.history.totals, rel=1e-5)
    result = run_cli("--task", "binary-imbalanced", "--losses", "zero_one_loss", "--quick")
    assert result.exit_code == 1 and "not differentiable" in result.output


# --------------------------------------------------------------------------- embedded data


def test_binary_data_has_about_two_percent_positives_in_every_split():
    data = lab_data.binary_imbalanced_digits(0)
    for split in (data.train, data.val, data.test):
        share = float(split.y.mean())
        assert 0.01 < share < 0.03, share


def test_longtail_data_has_the_imbalance_ratio_and_a_balanced_test_set():
    data = lab_data.longtail_digits(0, imbalance_ratio=50.0)
    counts = torch.bincount(data.train.y, minlength=10).tolist()
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 50 * counts[-1]
    test_counts = torch.bincount(data.test.y, minlength=10)
    assert int(test_counts.max() - test_counts.min()) <= 2


def test_outlier_data_corrupts_ten_percent_of_training_targets_only():
    datasets = pytest.importorskip("sklearn.datasets", reason="diabetes data")
    clean = set(np.round(datasets.load_diabetes().target, 3).tolist())
    data = lab_data.outlier_diabetes(0)
    corrupted = [v not in clean for v in np.round(data.train.y.numpy(), 3).tolist()]
    assert sum(corrupted) == round(0.1 * len(data.train))
    assert all(v in clean for v in np.round(data.test.y.numpy(), 3).tolist())
    # robust target scaling: median and IQR / 1.349 of the (corrupted) training targets
    q75, q25 = np.percentile(data.train.y.numpy(), [75, 25])
    assert data.target_center == pytest.approx(float(np.median(data.train.y.numpy())), rel=1e-6)
    assert data.target_scale == pytest.approx((q75 - q25) / 1.349, rel=1e-5)


def test_segmentation_data_is_mostly_background_with_both_shapes():
    data = lab_data.synthetic_segmentation(0)
    fractions = torch.bincount(data.train.y.flatten(), minlength=3).float() / data.train.y.numel()
    assert fractions[0] > 0.85 and fractions[1] > 0.005 and fractions[2] > 0.005
    assert data.train.x.shape[1:] == (1, 32, 32)

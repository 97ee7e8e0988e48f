"""The metrics ``lossatlas compare`` judges the candidates by, and their chance levels.

Every metric is computed on the test split (binary F1 at the threshold best on validation). A
metric's *chance level* is what a model that learned nothing scores on the same split (a random
or constant prediction, named in :attr:`Metric.chance_text`); a candidate at or beyond it is
reported with a warning, never as a result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas._optional import require
from lossatlas.lab.data import Dataset

__all__ = [
    "Metric",
    "evaluate_binary",
    "evaluate_metric",
    "evaluate_multiclass",
    "evaluate_regression",
    "evaluate_segmentation",
    "rarest_classes",
    "recall_at_1",
    "segmentation_scores",
]


@dataclass(frozen=True)
class Metric:
    """A metric of a task.

    Attributes:
        key: Its key in the per-run results.
        label: Its column label.
        higher_is_better: Which way is better.
        description: What it is, for the report.
        chance: ``chance(data) -> value`` of a model that learned nothing, or ``None``.
        chance_text: What that chance level is ("a random score").
    """

    key: str
    label: str
    higher_is_better: bool = True
    description: str = ""
    chance: Callable[[Dataset], float] | None = None
    chance_text: str = ""

    def no_better_than(self, value: float, chance: float) -> bool:
        """Whether ``value`` is at or beyond ``chance`` on the wrong side."""
        return value <= chance if self.higher_is_better else value >= chance


def _sk_metrics() -> Any:
    return require("sklearn.metrics", "lab", purpose="lossatlas compare's metrics")


@torch.no_grad()
def _outputs(model: nn.Module, x: Tensor, device: torch.device) -> Tensor:
    model.eval()
    try:
        return model(x.to(device)).float().cpu()
    finally:
        model.train()


# --------------------------------------------------------------------------- evaluation


def evaluate_binary(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Average precision and ROC-AUC on test; F1 on test at the threshold best on validation."""
    m = _sk_metrics()
    val_scores = torch.sigmoid(_outputs(model, data.val.x, device)).numpy()
    test_scores = torch.sigmoid(_outputs(model, data.test.x, device)).numpy()
    y_val, y_test = data.val.y.numpy(), data.test.y.numpy()
    precision, recall, thresholds = m.precision_recall_curve(y_val, val_scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    threshold = float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5
    return {
        "average_precision": float(m.average_precision_score(y_test, test_scores)),
        "f1": float(m.f1_score(y_test, test_scores >= threshold, zero_division=0)),
        "roc_auc": float(m.roc_auc_score(y_test, test_scores)),
    }


def rarest_classes(data: Dataset, k: int = 3) -> list[int]:
    """The ``k`` classes with the fewest training samples (ties broken by index)."""
    counts = torch.bincount(data.train.y.long(), minlength=data.num_classes or 0)
    return sorted(range(len(counts)), key=lambda c: (int(counts[c]), c))[:k]


def evaluate_multiclass(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Balanced accuracy, macro-F1, accuracy and mean recall of the 3 rarest classes, on test."""
    m = _sk_metrics()
    pred = _outputs(model, data.test.x, device).argmax(1).numpy()
    y = data.test.y.numpy()
    labels = list(range(data.num_classes or 0))
    recall = m.recall_score(y, pred, labels=labels, average=None, zero_division=0)
    return {
        "balanced_accuracy": float(m.balanced_accuracy_score(y, pred)),
        "macro_f1": float(m.f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(m.accuracy_score(y, pred)),
        "rare_recall": float(np.mean([recall[c] for c in rarest_classes(data)])),
    }


def evaluate_regression(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """MAE and RMSE on the test split, in the target's original units."""
    pred = _outputs(model, data.test.x, device) * data.target_scale + data.target_center
    error = pred - data.test.y
    return {
        "mae": float(error.abs().mean()),
        "rmse": float(error.pow(2).mean().sqrt()),
    }


def segmentation_scores(pred: Tensor, target: Tensor, num_classes: int) -> dict[str, float]:
    """Mean IoU and Dice over the foreground classes, from pixel counts over the whole set.

    A class absent from both prediction and target is left out of the means.
    """
    ious, dices = [], []
    for c in range(1, num_classes):
        p, t = pred == c, target == c
        tp = int((p & t).sum())
        fp = int((p & ~t).sum())
        fn = int((~p & t).sum())
        if tp + fp + fn == 0:
            continue
        ious.append(tp / (tp + fp + fn))
        dices.append(2 * tp / (2 * tp + fp + fn))
    return {
        "mean_iou": float(np.mean(ious)) if ious else float("nan"),
        "dice": float(np.mean(dices)) if dices else float("nan"),
    }


def evaluate_segmentation(
    model: nn.Module, data: Dataset, device: torch.device
) -> dict[str, float]:
    """Mean IoU and Dice over the foreground classes on the test images."""
    pred = _outputs(model, data.test.x, device).argmax(1)
    return segmentation_scores(pred, data.test.y, data.num_classes or 2)


def recall_at_1(embeddings: Tensor, labels: Tensor) -> float:
    """Fraction of samples whose nearest other sample (cosine) has the same label."""
    emb = F.normalize(embeddings.float(), dim=1)
    sim = emb @ emb.T
    sim.fill_diagonal_(-float("inf"))
    return float((labels[sim.argmax(1)] == labels).float().mean())


def evaluate_metric(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Recall@1 among the held-out test samples (each query against all the others)."""
    return {"recall_at_1": recall_at_1(_outputs(model, data.test.x, device), data.test.y)}


# --------------------------------------------------------------------------- chance levels


def positive_share(data: Dataset) -> float:
    """The test split's share of positives: the average precision of a random score."""
    return float(data.test.y.float().mean())


def half(data: Dataset) -> float:
    """0.5: the ROC-AUC of a random score."""
    return 0.5


def all_positive_f1(data: Dataset) -> float:
    """F1 of calling everything positive, ``2 p / (1 + p)`` with ``p`` the positive share."""
    p = positive_share(data)
    return 2 * p / (1 + p)


def one_over_classes(data: Dataset) -> float:
    """``1 / C``: the balanced accuracy (and mean recall) of a random guess."""
    return 1.0 / (data.num_classes or 2)


def majority_share(data: Dataset) -> float:
    """The test share of the class most frequent in training: a constant guess's accuracy."""
    majority = int(torch.bincount(data.train.y.flatten().long()).argmax())
    return float((data.test.y == majority).float().mean())


def median_mae(data: Dataset) -> float:
    """Test MAE of predicting the training median for every row."""
    return float((data.test.y - data.train.y.median()).abs().mean())


def mean_rmse(data: Dataset) -> float:
    """Test RMSE of predicting the training mean for every row."""
    return float((data.test.y - data.train.y.mean()).pow(2).mean().sqrt())


def zero(data: Dataset) -> float:
    """0: the foreground IoU / Dice of predicting background everywhere."""
    return 0.0


def random_neighbour(data: Dataset) -> float:
    """Recall@1 of a random neighbour: the chance that another test sample shares the class."""
    counts = torch.bincount(data.test.y.long()).double()
    n = float(counts.sum())
    return float((counts * (counts - 1)).sum() / (n * (n - 1))) if n > 1 else 0.0

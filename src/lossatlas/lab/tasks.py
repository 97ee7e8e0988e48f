"""The tasks of ``lossatlas compare``: data, model, candidate losses, metrics.

A :class:`Task` bundles an embedded data set, a small model, the candidate losses from the
catalog and the metrics that task is judged by. Each candidate names one catalog loss and an
*adapter*: a small function that turns the catalog loss into ``loss_fn(output, target)`` for this
task's model output -- computing what the loss needs from the training data (``pos_weight``,
``samples_per_class``), mining pairs or triplets from a batch (metric learning), or building a
module with its own parameters (ArcFace). Candidates whose loss is not in the catalog are skipped
with a note, so the task lists grow with the catalog.

Any other catalog loss that carries the task's catalog task (``binary``, ``multiclass``,
``regression``, ``segmentation``) can be compared too: :func:`generic_candidate` calls it on the
model's output, turned into probabilities or log-probabilities when the loss's ``input_kind``
asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas._catalog import LossSpec
from lossatlas._optional import require
from lossatlas.lab import data as lab_data
from lossatlas.lab.data import Dataset

__all__ = ["TASKS", "Candidate", "Metric", "Task", "generic_candidate", "get_task"]

LossFn = Callable[[Tensor, Tensor], Any]
#: ``build(spec, data, device) -> loss_fn``; an ``nn.Module`` loss_fn is trained with the model.
Builder = Callable[[LossSpec, Dataset, torch.device], LossFn]
Kind = Literal["binary", "multiclass", "regression", "segmentation", "metric"]


@dataclass(frozen=True)
class Candidate:
    """One loss to compare on a task.

    Attributes:
        key: Its row label in the report (unique within the task).
        loss: The catalog name it uses.
        build: The adapter, ``build(spec, data, device) -> loss_fn(output, target)``.
        setting: What the adapter sets, for the report (``"pos_weight = #neg / #pos"``).
    """

    key: str
    loss: str
    build: Builder
    setting: str = "library defaults"


@dataclass(frozen=True)
class Metric:
    """A metric of a task: its key in the results, a label, which way is better, what it is."""

    key: str
    label: str
    higher_is_better: bool = True
    description: str = ""


@dataclass(frozen=True)
class Task:
    """A task of ``compare``: data, model, candidates, metrics and training settings."""

    name: str
    description: str
    kind: Kind
    catalog_task: str
    load: Callable[[int, bool], Dataset]
    make_model: Callable[[Dataset], nn.Module]
    candidates: tuple[Candidate, ...]
    metrics: tuple[Metric, ...]
    evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]]
    epochs: int
    quick_epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-4
    tabular: bool = False

    @property
    def primary(self) -> Metric:
        """The metric the rows are sorted by (the first)."""
        return self.metrics[0]

    def batches(
        self, data: Dataset, generator: torch.Generator, device: torch.device
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of shuffled training batches ``(inputs, targets)`` on ``device``."""
        if self.kind == "metric":
            yield from _pk_batches(data, generator, device)
            return
        x, y = data.train.x, data.train.y
        if self.kind == "regression":
            y = (y - data.target_center) / data.target_scale
        order = torch.randperm(len(data.train), generator=generator)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield x[idx].to(device), y[idx].to(device)


# --------------------------------------------------------------------------- models


class MLP(nn.Sequential):
    """``in -> hidden -> hidden -> out`` with ReLU; ``out == 1`` squeezes to ``(N,)``."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64) -> None:
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )
        self.squeeze = out_features == 1

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        return out.squeeze(1) if self.squeeze else out


class TinySegNet(nn.Module):
    """Four 3x3 convolutions with dilations 1, 2, 4, 1 (receptive field 17 px), then 1x1."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for dilation in (1, 2, 4, 1):
            layers += [
                nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation),
                nn.ReLU(),
            ]
            channels = width
        layers.append(nn.Conv2d(width, num_classes, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class EmbeddingNet(nn.Module):
    """An MLP whose output is L2-normalised (embeddings on the unit sphere)."""

    def __init__(self, in_features: int, dim: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x), dim=1)


def _in_features(data: Dataset) -> int:
    return int(data.train.x.shape[1])


# --------------------------------------------------------------------------- metrics


def _sk_metrics() -> Any:
    return require("sklearn.metrics", "lab", purpose="lossatlas compare's metrics")


@torch.no_grad()
def _outputs(model: nn.Module, x: Tensor, device: torch.device) -> Tensor:
    model.eval()
    try:
        return model(x.to(device)).float().cpu()
    finally:
        model.train()


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


# --------------------------------------------------------------------------- adapters


def _bind(spec: LossSpec, **options: Any) -> LossFn:
    if "return_parts" in spec.options:  # composite losses: log their parts per epoch too
        options.setdefault("return_parts", True)

    def loss_fn(output: Tensor, target: Tensor) -> Any:
        return spec.function(output, target, **options)

    return loss_fn


def plain(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """The loss at its library defaults, on the model's output and the target."""
    return _bind(spec)


def _with(**options: Any) -> Builder:
    def build(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
        return _bind(spec, **options)

    return build


def _binary_counts(data: Dataset) -> tuple[int, int]:
    positives = int(data.train.y.sum())
    return len(data.train) - positives, positives


def bce_pos_weight(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """BCE with ``pos_weight = #negatives / #positives`` of the training split."""
    negatives, positives = _binary_counts(data)
    return _bind(spec, pos_weight=torch.tensor(negatives / max(positives, 1), device=device))


def balanced_bce(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Alpha-balanced BCE with ``alpha`` = the negatives' share (weight of the positives)."""
    negatives, positives = _binary_counts(data)
    return _bind(spec, alpha=negatives / (negatives + positives))


def class_balanced_sigmoid(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Class-balanced sigmoid loss on one logit ``z``, given as two logits ``[-z, z]``.

    With two classes, sigmoid BCE on ``[-z, z]`` against one-hot targets is twice BCE on ``z``,
    so this is the paper's sigmoid loss for a single-logit binary model.
    """
    negatives, positives = _binary_counts(data)

    def loss_fn(output: Tensor, target: Tensor) -> Any:
        logits = torch.stack([-output, output], dim=1)
        return spec.function(
            logits, target.long(), samples_per_class=[negatives, positives], loss_type="sigmoid"
        )

    return loss_fn


def _class_counts(data: Dataset) -> list[int]:
    return torch.bincount(data.train.y.flatten().long(), minlength=data.num_classes or 0).tolist()


def class_balanced(loss_type: str) -> Builder:
    """Class-balanced loss of ``loss_type`` with the training split's class counts."""

    def build(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
        return _bind(spec, samples_per_class=_class_counts(data), loss_type=loss_type)

    return build


def quantile_median(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Pinball loss at the median (0.5), whatever the option is called."""
    for option in ("quantile", "quantiles", "tau", "q"):
        if option in spec.options:
            return _bind(spec, **{option: 0.5})
    raise TypeError(f"{spec.name} has no quantile option (options: {list(spec.options)})")


# metric learning: batches of P classes x K samples; the loss sees (embeddings, labels)
_PK_CLASSES = 10
_PK_SAMPLES = 4


def _pk_batches(
    data: Dataset, generator: torch.Generator, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches of ``P`` classes x ``K`` samples each, laid out class by class."""
    labels = data.train.y
    classes = torch.unique(labels)
    pools = {int(c): torch.nonzero(labels == c).flatten() for c in classes}
    for pool in pools.values():
        if len(pool) < _PK_SAMPLES:
            raise lab_data.DataError(
                f"metric learning needs {_PK_SAMPLES} training samples per class, a class has "
                f"{len(pool)}"
            )
    n_batches = max(1, len(labels) // (_PK_CLASSES * _PK_SAMPLES))
    for _ in range(n_batches):
        chosen = classes[torch.randperm(len(classes), generator=generator)[:_PK_CLASSES]]
        idx = []
        for c in chosen.tolist():
            pool = pools[c]
            idx.append(pool[torch.randperm(len(pool), generator=generator)[:_PK_SAMPLES]])
        batch = torch.cat(idx)
        yield data.train.x[batch].to(device), labels[batch].to(device)


def triplet_batch_hard(margin: float) -> Builder:
    """Triplet loss with batch-hard mining: each anchor's farthest positive, nearest negative."""

    def build(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
        def loss_fn(embeddings: Tensor, labels: Tensor) -> Any:
            with torch.no_grad():
                dist = torch.cdist(embeddings, embeddings)
                same = labels[:, None] == labels[None, :]
                positive = dist.masked_fill(~same, -1.0).argmax(1)
                negative = dist.masked_fill(same, float("inf")).argmin(1)
            return spec.function(
                embeddings, embeddings[positive], embeddings[negative], margin=margin
            )

        return loss_fn

    return build


def contrastive_all_pairs(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Contrastive loss over every pair ``i < j`` of the batch; ``same`` from the labels."""

    def loss_fn(embeddings: Tensor, labels: Tensor) -> Any:
        i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        same = (labels[i] == labels[j]).to(embeddings.dtype)
        return spec.function(embeddings[i], embeddings[j], same)

    return loss_fn


def info_nce_pairs(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """InfoNCE with queries and keys from the same class (samples 2g and 2g+1 of each class).

    The P classes x K samples batch gives K/2 groups of P (query, key) pairs; the other
    classes' keys are the in-batch negatives, so no negative shares the query's class.
    """

    def loss_fn(embeddings: Tensor, labels: Tensor) -> Any:
        grouped = embeddings.reshape(-1, _PK_SAMPLES, embeddings.shape[1])
        losses = [
            spec.function(grouped[:, g], grouped[:, g + 1]) for g in range(0, _PK_SAMPLES - 1, 2)
        ]
        return torch.stack([torch.as_tensor(v) for v in losses]).mean()

    return loss_fn


class MarginSoftmaxHead(nn.Module):
    """The class centres of a margin-softmax loss (ArcFace...), trained with the model.

    Calls ``loss(embeddings, weight, target)`` with ``weight`` a ``(num_classes, dim)``
    parameter initialised as ``nn.Linear`` initialises its weight.
    """

    def __init__(self, loss: Callable[..., Any], num_classes: int, dim: int) -> None:
        super().__init__()
        self.loss = loss
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, embeddings: Tensor, target: Tensor) -> Any:
        return self.loss(embeddings, self.weight, target)


def margin_softmax_head(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """ArcFace-style loss whose class centres are a parameter trained with the model."""
    return MarginSoftmaxHead(spec.function, data.num_classes or 2, EMBEDDING_DIM).to(device)


EMBEDDING_DIM = 32


def generic_candidate(spec: LossSpec, kind: Kind) -> Candidate:
    """A candidate for any catalog loss of the task, called on the model's output as is.

    Probability and log-probability losses get ``sigmoid``/``softmax``/``log_softmax`` of the
    model's logits first; margin losses (targets in {-1, +1}) get the {0, 1} labels as
    ``2 y - 1``; losses that want ``torch.long`` labels get them.
    """
    wants = spec.input_kind.lower()
    signs = "{-1, +1}" in spec.target_kind
    long_labels = "torch.long" in spec.target_kind

    def build(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
        def loss_fn(output: Tensor, target: Tensor) -> Any:
            if signs:
                target = target * 2 - 1
            elif long_labels:
                target = target.long()
            if wants.startswith("log-prob"):
                output = F.log_softmax(output, dim=1)
            elif wants.startswith("prob"):
                output = torch.sigmoid(output) if kind == "binary" else F.softmax(output, dim=1)
            return spec.function(output, target)

        return loss_fn

    return Candidate(key=spec.name, loss=spec.name, build=build, setting="library defaults")


# --------------------------------------------------------------------------- tasks

TASKS: dict[str, Task] = {}


def _add(task: Task) -> None:
    TASKS[task.name] = task


_add(
    Task(
        name="regression-outliers",
        description="regression with 10 % gross outliers in the training targets, clean test set",
        kind="regression",
        catalog_task="regression",
        load=lambda seed, quick: lab_data.outlier_diabetes(seed, quick=quick),
        make_model=lambda data: MLP(_in_features(data), 1, hidden=16),
        candidates=(
            Candidate("mse", "mse_loss", plain),
            Candidate("mae", "l1_loss", plain),
            Candidate("huber", "huber_loss", plain),
            Candidate("smooth_l1", "smooth_l1_loss", plain),
            Candidate("pseudo_huber", "pseudo_huber_loss", plain),
            Candidate("log_cosh", "log_cosh_loss", plain),
            Candidate("quantile_0.5", "quantile_loss", quantile_median, "quantile 0.5"),
        ),
        metrics=(
            Metric("mae", "test MAE", False, "mean absolute error, original units, clean test"),
            Metric("rmse", "test RMSE", False, "root mean squared error, original units"),
        ),
        evaluate=evaluate_regression,
        epochs=20,
        quick_epochs=5,
        batch_size=32,
        lr=3e-3,
        tabular=True,
    )
)

_add(
    Task(
        name="binary-imbalanced",
        description="binary classification with ~2 % positives",
        kind="binary",
        catalog_task="binary",
        load=lambda seed, quick: lab_data.binary_imbalanced_digits(seed, quick=quick),
        make_model=lambda data: MLP(_in_features(data), 1),
        candidates=(
            Candidate("bce", "binary_cross_entropy_with_logits", plain),
            Candidate(
                "bce_pos_weight",
                "binary_cross_entropy_with_logits",
                bce_pos_weight,
                "pos_weight = #neg / #pos (train)",
            ),
            Candidate(
                "balanced_bce",
                "balanced_binary_cross_entropy",
                balanced_bce,
                "alpha = share of negatives (train)",
            ),
            Candidate("binary_focal", "binary_focal_loss", plain),
            Candidate(
                "class_balanced_sigmoid",
                "class_balanced_loss",
                class_balanced_sigmoid,
                "loss_type='sigmoid', samples_per_class from train",
            ),
            Candidate("ghmc", "ghmc_loss", plain),
            Candidate("binary_dsc", "binary_dsc_loss", plain),
        ),
        metrics=(
            Metric("average_precision", "AP", True, "average precision (area under the PR curve)"),
            Metric("f1", "F1 @ val. thr.", True, "F1 at the threshold best on validation"),
            Metric("roc_auc", "ROC-AUC", True, "area under the ROC curve"),
        ),
        evaluate=evaluate_binary,
        epochs=30,
        quick_epochs=2,
        batch_size=64,
        lr=1e-3,
        tabular=True,
    )
)

_add(
    Task(
        name="multiclass-longtail",
        description="multi-class classification with a long-tailed training set, balanced test",
        kind="multiclass",
        catalog_task="multiclass",
        load=lambda seed, quick: lab_data.longtail_digits(seed, quick=quick),
        make_model=lambda data: MLP(_in_features(data), data.num_classes or 2),
        candidates=(
            Candidate("ce", "cross_entropy", plain),
            Candidate(
                "label_smoothing",
                "label_smoothing_cross_entropy",
                _with(epsilon=0.1),
                "epsilon 0.1",
            ),
            Candidate("focal", "focal_loss", plain),
            Candidate(
                "class_balanced_softmax",
                "class_balanced_loss",
                class_balanced("softmax"),
                "loss_type='softmax', samples_per_class from train",
            ),
            Candidate(
                "class_balanced_focal",
                "class_balanced_loss",
                class_balanced("focal"),
                "loss_type='focal', samples_per_class from train",
            ),
            Candidate("poly1", "poly1_cross_entropy", plain),
        ),
        metrics=(
            Metric("balanced_accuracy", "bal. accuracy", True, "mean recall over classes"),
            Metric("macro_f1", "macro-F1", True, "F1 averaged over classes"),
            Metric("accuracy", "accuracy", True, "fraction correct"),
            Metric(
                "rare_recall", "rare recall", True, "mean recall of the 3 rarest training classes"
            ),
        ),
        evaluate=evaluate_multiclass,
        epochs=60,
        quick_epochs=2,
        batch_size=32,
        lr=1e-3,
        tabular=True,
    )
)

_NO_BACKGROUND = "include_background=False"

_add(
    Task(
        name="segmentation",
        description="semantic segmentation of small shapes on noise (3 classes)",
        kind="segmentation",
        catalog_task="segmentation",
        load=lambda seed, quick: lab_data.synthetic_segmentation(seed, quick=quick),
        make_model=lambda data: TinySegNet(data.num_classes or 2),
        candidates=(
            Candidate("ce", "cross_entropy", plain),
            # Overlap losses score foreground classes only: with the background's (near
            # perfect) Dice term included, softmax Dice, Tversky and focal Tversky collapse to
            # all-background on this data (measured: IoU 0.000 for every seed).
            Candidate("dice", "dice_loss", _with(include_background=False), _NO_BACKGROUND),
            Candidate("dice_ce", "dice_ce_loss", plain),
            Candidate("dice_focal", "dice_focal_loss", plain),
            Candidate(
                "tversky",
                "tversky_loss",
                _with(alpha=0.3, beta=0.7, include_background=False),
                "alpha 0.3 (FP), beta 0.7 (FN), " + _NO_BACKGROUND,
            ),
            Candidate(
                "focal_tversky",
                "focal_tversky_loss",
                _with(include_background=False),
                _NO_BACKGROUND,
            ),
            Candidate("lovasz", "lovasz_softmax_loss", plain),
        ),
        metrics=(
            Metric("mean_iou", "mean IoU (fg)", True, "IoU per foreground class, averaged"),
            Metric("dice", "Dice (fg)", True, "Dice per foreground class, averaged"),
        ),
        evaluate=evaluate_segmentation,
        epochs=20,
        quick_epochs=1,
        batch_size=16,
        lr=3e-3,
    )
)

_add(
    Task(
        name="metric-learning",
        description="embeddings of digits, judged by nearest-neighbour retrieval",
        kind="metric",
        catalog_task="metric-learning",
        load=lambda seed, quick: lab_data.metric_digits(seed, quick=quick),
        make_model=lambda data: EmbeddingNet(_in_features(data), EMBEDDING_DIM),
        candidates=(
            Candidate(
                "triplet",
                "triplet_margin_loss",
                triplet_batch_hard(0.2),
                "batch-hard mining, margin 0.2",
            ),
            Candidate(
                "contrastive", "contrastive_loss", contrastive_all_pairs, "all pairs of the batch"
            ),
            Candidate(
                "info_nce",
                "info_nce_loss",
                info_nce_pairs,
                "same-class (query, key) pairs, in-batch negatives",
            ),
            Candidate("arcface", "arcface_loss", margin_softmax_head, "class centres trained"),
        ),
        metrics=(
            Metric(
                "recall_at_1",
                "recall@1",
                True,
                "held-out samples whose nearest neighbour shares the class",
            ),
        ),
        evaluate=evaluate_metric,
        epochs=30,
        quick_epochs=2,
        batch_size=_PK_CLASSES * _PK_SAMPLES,
        lr=1e-3,
    )
)


def get_task(name: str) -> Task:
    """The task called ``name`` (``KeyError`` with the list otherwise)."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"no task named {name!r}; tasks: {', '.join(TASKS)}") from None
